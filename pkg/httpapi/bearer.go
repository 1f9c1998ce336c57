package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// BearerToken is the one bearer token an endpoint accepts, kept as its
// SHA-256 digest and compared in constant time. The zero value accepts
// none.
type BearerToken struct {
	sum [sha256.Size]byte
	set bool
}

// NewBearerToken returns the token to accept; an empty token accepts none.
func NewBearerToken(token string) BearerToken {
	if token == "" {
		return BearerToken{}
	}
	return BearerToken{sum: sha256.Sum256([]byte(token)), set: true}
}

// Configured says whether a token is set: without one, every request is
// refused.
func (b BearerToken) Configured() bool { return b.set }

// The outcomes of BearerToken.Check other than success: the request
// carries no bearer token (answer 401 with WWW-Authenticate), or one that
// is not accepted, or none is configured (answer 403).
var (
	ErrNoBearerToken    = errors.New("no bearer token")
	ErrWrongBearerToken = errors.New("bearer token not accepted")
)

// Check reads the request's Authorization header (scheme Bearer, in any
// case): nil when it carries the token, ErrNoBearerToken when it carries
// none, ErrWrongBearerToken when it carries another or none is configured.
func (b BearerToken) Check(r *http.Request) error {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return ErrNoBearerToken
	}
	sum := sha256.Sum256([]byte(token))
	if !b.set || subtle.ConstantTimeCompare(sum[:], b.sum[:]) != 1 {
		return ErrWrongBearerToken
	}
	return nil
}
