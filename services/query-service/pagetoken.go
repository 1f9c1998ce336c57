package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
//
// A listing's token (format 2) carries the generation of the view's tables
// it pages through ahead of the paging state, as a uvarint: a paging state
// is valid in its own table only, so the listing goes on in that
// generation while it exists (generations.forToken). A format 1 token of
// a listing was issued before generations: generation 1.
const (
	tokenFormat    = 1
	tokenFormatGen = 2
	// maxPageToken bounds what is decoded at all; a real token is far
	// shorter (a paging state is a few dozen bytes).
	maxPageToken = 2048
)

var errBadToken = errors.New("page token is not valid for this listing")

// signer signs and checks page tokens with one key.
type signer struct{ key []byte }

func newSigner(key []byte) *signer { return &signer{key: append([]byte(nil), key...)} }

func (s *signer) mac(format byte, scope string, position []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte{format})
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(position)
	return m.Sum(nil)
}

// sign returns the token resuming the listing scope at position.
func (s *signer) sign(scope string, position []byte) string {
	return s.signFormat(tokenFormat, scope, position)
}

func (s *signer) signFormat(format byte, scope string, position []byte) string {
	b := make([]byte, 0, 1+len(position)+sha256.Size)
	b = append(b, format)
	b = append(b, position...)
	b = append(b, s.mac(format, scope, position)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signAt returns the token resuming the listing scope at position in
// generation gen of the view's tables.
func (s *signer) signAt(scope string, gen int, position []byte) string {
	return s.signFormat(tokenFormatGen, scope, append(binary.AppendUvarint(nil, uint64(gen)), position...))
}

// open checks token (format 1) against scope and returns its position.
func (s *signer) open(scope, token string) ([]byte, error) {
	format, position, err := s.openFormat(scope, token)
	if err != nil || format != tokenFormat {
		return nil, errBadToken
	}
	return position, nil
}

// openAt checks a listing's token against scope and returns the
// generation it was issued in and its position.
func (s *signer) openAt(scope, token string) (int, []byte, error) {
	format, position, err := s.openFormat(scope, token)
	if err != nil {
		return 0, nil, err
	}
	if format == tokenFormat {
		return 1, position, nil
	}
	gen, n := binary.Uvarint(position)
	if n <= 0 || gen < 1 || gen > 1<<20 {
		return 0, nil, errBadToken
	}
	return int(gen), position[n:], nil
}

func (s *signer) openFormat(scope, token string) (byte, []byte, error) {
	if len(token) > maxPageToken {
		return 0, nil, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+sha256.Size || (b[0] != tokenFormat && b[0] != tokenFormatGen) {
		return 0, nil, errBadToken
	}
	position, sum := b[1:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if !hmac.Equal(sum, s.mac(b[0], scope, position)) {
		return 0, nil, errBadToken
	}
	return b[0], position, nil
}
