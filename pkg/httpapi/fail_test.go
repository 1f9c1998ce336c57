package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

func TestFail(t *testing.T) {
	down := errors.New("no host available")
	unavailable := func(err error) bool { return errors.Is(err, down) }
	for _, tc := range []struct {
		name   string
		err    error
		status int
	}{
		{"a problem is answered as itself", NewProblem(http.StatusNotFound, "not-found", "Not found", "no such thing"), http.StatusNotFound},
		{"an unavailable database is 503", down, http.StatusServiceUnavailable},
		{"anything else is 500", errors.New("bug"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Fail(w, httptest.NewRequest("GET", "/v1/x", nil), zerolog.Nop(), "failed", tc.err, unavailable)
			require.Equal(t, tc.status, w.Code)
			require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
		})
	}
}
