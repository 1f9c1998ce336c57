package httpapi

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearerTokenCheck(t *testing.T) {
	const token = "0123456789abcdef-token"
	check := func(b BearerToken, header string) error {
		r := httptest.NewRequest("POST", "/", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		return b.Check(r)
	}
	b := NewBearerToken(token)
	require.True(t, b.Configured())
	require.NoError(t, check(b, "Bearer "+token))
	require.NoError(t, check(b, "bearer  "+token+" "))
	require.ErrorIs(t, check(b, ""), ErrNoBearerToken)
	require.ErrorIs(t, check(b, "Bearer "), ErrNoBearerToken)
	require.ErrorIs(t, check(b, "Basic "+token), ErrNoBearerToken)
	require.ErrorIs(t, check(b, "Bearer "+token+"x"), ErrWrongBearerToken)

	none := NewBearerToken("")
	require.False(t, none.Configured())
	require.ErrorIs(t, check(none, "Bearer "+token), ErrWrongBearerToken)
	require.ErrorIs(t, check(BearerToken{}, "Bearer x"), ErrWrongBearerToken)
}
