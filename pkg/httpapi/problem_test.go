package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

// decodeProblemBody checks the media type of an answer and decodes it.
func decodeProblemBody(t *testing.T, rec *httptest.ResponseRecorder) (Problem, map[string]any) {
	t.Helper()
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p Problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	var raw map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &raw))
	return p, raw
}

func TestWriteProblem(t *testing.T) {
	version := int64(7)
	tests := []struct {
		name        string
		problem     Problem
		correlation string
		preset      map[string]string // response headers the handler set first
		want        Problem
		retryAfter  string
	}{
		{
			name:        "fills instance and correlation id",
			problem:     NewProblem(http.StatusConflict, "state-conflict", "Conflict", "order is shipped").WithCode("order.shipped").WithCurrentVersion(version).Problem,
			correlation: "corr-1",
			want: Problem{Type: ProblemTypeBase + "state-conflict", Title: "Conflict", Status: 409, Detail: "order is shipped",
				Instance: "/v1/orders/o-1/confirm", Code: "order.shipped", CorrelationID: "corr-1", CurrentVersion: &version},
		},
		{
			name:        "keeps given instance and correlation id",
			problem:     Problem{Type: ProblemTypeBase + "x", Title: "X", Status: 400, Instance: "/elsewhere", CorrelationID: "given", Field: "items[0].quantity"},
			correlation: "corr-2",
			want:        Problem{Type: ProblemTypeBase + "x", Title: "X", Status: 400, Instance: "/elsewhere", CorrelationID: "given", Field: "items[0].quantity", Code: "x"},
		},
		{
			name:    "blank problem gets defaults",
			problem: Problem{},
			want:    Problem{Type: "about:blank", Title: "Internal Server Error", Status: 500, Instance: "/v1/orders/o-1/confirm", Code: "internal-server-error"},
		},
		{
			name:       "503 asks for a retry",
			problem:    NewProblem(http.StatusServiceUnavailable, "unavailable", "Unavailable", "").Problem,
			want:       Problem{Type: ProblemTypeBase + "unavailable", Title: "Unavailable", Status: 503, Instance: "/v1/orders/o-1/confirm", Code: "unavailable"},
			retryAfter: "1",
		},
		{
			name:       "503 keeps the handler's Retry-After",
			problem:    NewProblem(http.StatusServiceUnavailable, "unavailable", "Unavailable", "").Problem,
			preset:     map[string]string{"Retry-After": "30"},
			want:       Problem{Type: ProblemTypeBase + "unavailable", Title: "Unavailable", Status: 503, Instance: "/v1/orders/o-1/confirm", Code: "unavailable"},
			retryAfter: "30",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/orders/o-1/confirm", nil)
			if tc.correlation != "" {
				r = r.WithContext(WithCorrelationID(r.Context(), tc.correlation))
			}
			rec := httptest.NewRecorder()
			for k, v := range tc.preset {
				rec.Header().Set(k, v)
			}
			WriteProblem(rec, r, tc.problem)
			require.Equal(t, tc.want.Status, rec.Code)
			require.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			got, raw := decodeProblemBody(t, rec)
			require.Equal(t, tc.want, got)
			_, hasVersion := raw["current_version"]
			require.Equal(t, tc.want.CurrentVersion != nil, hasVersion, "current_version present only when set")
		})
	}
}

func TestProblemErrorCopies(t *testing.T) {
	base := NewProblem(http.StatusBadRequest, "invalid-id", "Invalid id", "not a UUID")
	withField := base.WithField("id")
	require.Empty(t, base.Problem.Field, "WithField must not change a shared problem")
	require.Equal(t, "id", withField.Problem.Field)
	require.Equal(t, "invalid-id", withField.Problem.Slug())
	require.Equal(t, "400 Invalid id (field id): not a UUID", withField.Error())
	require.Empty(t, Problem{Type: "about:blank"}.Slug())
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		slug   string
		hidden string
	}{
		{name: "problem", err: NewProblem(http.StatusNotFound, "not-found", "Not found", "no order o-1"), status: 404, slug: "not-found"},
		{name: "wrapped problem", err: fmt.Errorf("loading: %w", NewProblem(http.StatusConflict, "id-taken", "Id taken", "")), status: 409, slug: "id-taken"},
		{name: "plain error is hidden", err: errors.New("cql: query SELECT * FROM event_store failed on host 10.0.0.7"), status: 500, slug: "internal-error", hidden: "10.0.0.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/orders/o-1", nil)
			r = r.WithContext(WithCorrelationID(r.Context(), "corr-9"))
			rec := httptest.NewRecorder()
			WriteError(rec, r, tc.err)
			require.Equal(t, tc.status, rec.Code)
			p, _ := decodeProblemBody(t, rec)
			require.Equal(t, tc.slug, p.Slug())
			require.Equal(t, "corr-9", p.CorrelationID)
			if tc.hidden != "" {
				require.NotContains(t, rec.Body.String(), tc.hidden)
				require.NotContains(t, rec.Body.String(), "event_store")
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]any{"id": "o-1", "version": 1})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	require.JSONEq(t, `{"id":"o-1","version":1}`, rec.Body.String())

	// A value that cannot be encoded must not become a half-written 201.
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]any{"ch": make(chan int)})
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	p, _ := decodeProblemBody(t, rec)
	require.Equal(t, "internal-error", p.Slug())
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	r.Route("/v1", func(r chi.Router) {
		r.Get("/things/{id}", ok)
		r.Delete("/things/{id}", ok)
	})
	r.Post("/top", ok)

	tests := []struct {
		method, path string
		status       int
		slug         string
		allow        string
	}{
		{method: http.MethodGet, path: "/nope", status: 404, slug: "not-found"},
		{method: http.MethodGet, path: "/v1/nope", status: 404, slug: "not-found"},
		{method: http.MethodPost, path: "/v1/things/t-1", status: 405, slug: "method-not-allowed", allow: "GET, DELETE"},
		{method: http.MethodGet, path: "/top", status: 405, slug: "method-not-allowed", allow: "POST"},
		{method: "BREW", path: "/top", status: 405, slug: "method-not-allowed", allow: "POST"},
		{method: http.MethodGet, path: "/v1/things/t-1", status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			require.Equal(t, tc.status, rec.Code)
			require.Equal(t, tc.allow, rec.Header().Get("Allow"))
			if tc.slug == "" {
				return
			}
			p, _ := decodeProblemBody(t, rec)
			require.Equal(t, tc.slug, p.Slug())
			require.Equal(t, tc.path, p.Instance)
		})
	}
}
