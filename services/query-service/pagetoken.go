package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// A page token is base64url (no padding) of
//
//	format (1 byte) | position | HMAC-SHA256(key, format | scope | 0 | position)
//
// where position is what resumes the listing (CQL's paging state, or a
// sequence number) and scope names the listing it belongs to: the
// endpoint, its key and its filters. The MAC makes a token tamper-evident
// and, through the scope, useless for any other listing; CQL's paging
// state is never handed to the database unless it came from us.
const (
	tokenFormat = 1
	// maxPageToken bounds what is decoded at all; a real token is far
	// shorter (a paging state is a few dozen bytes).
	maxPageToken = 2048
)

var errBadToken = errors.New("page token is not valid for this listing")

// signer signs and checks page tokens with one key.
type signer struct{ key []byte }

func newSigner(key []byte) *signer { return &signer{key: append([]byte(nil), key...)} }

func (s *signer) mac(scope string, position []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte{tokenFormat})
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(position)
	return m.Sum(nil)
}

// sign returns the token resuming the listing scope at position.
func (s *signer) sign(scope string, position []byte) string {
	b := make([]byte, 0, 1+len(position)+sha256.Size)
	b = append(b, tokenFormat)
	b = append(b, position...)
	b = append(b, s.mac(scope, position)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open checks token against scope and returns its position.
func (s *signer) open(scope, token string) ([]byte, error) {
	if len(token) > maxPageToken {
		return nil, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+sha256.Size || b[0] != tokenFormat {
		return nil, errBadToken
	}
	position, sum := b[1:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if !hmac.Equal(sum, s.mac(scope, position)) {
		return nil, errBadToken
	}
	return position, nil
}
