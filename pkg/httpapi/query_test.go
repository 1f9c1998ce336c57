package httpapi

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseQuery(t *testing.T) {
	v, err := ParseQuery("limit=5&status=CREATED", "x.invalid_parameter", "limit", "status")
	require.NoError(t, err)
	require.Equal(t, "5", v.Get("limit"))

	for _, tc := range []struct{ raw, field string }{
		{"limt=5", "limt"},
		{"limit=1&limit=2", "limit"},
		{"b=1&a=1", "a"}, // the first unknown by name, every time
		{"%zz", "query"},
	} {
		_, err := ParseQuery(tc.raw, "x.invalid_parameter", "limit", "status")
		var pe *ProblemError
		require.True(t, errors.As(err, &pe), "%q: %v", tc.raw, err)
		require.Equal(t, 400, pe.Problem.Status)
		require.Equal(t, tc.field, pe.Problem.Field, tc.raw)
		require.Equal(t, "x.invalid_parameter", pe.Problem.Code)
	}
	_, err = ParseQuery("a=1", "x.invalid_parameter")
	require.ErrorContains(t, err, "takes no query parameters")
}
