package personal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
)

const (
	// KeySize is the size of a data key and of a key-encryption key:
	// AES-256.
	KeySize = 32
	// TextPrefix starts every sealed string value.
	TextPrefix = "pd:"

	nonceSize = 12
	tagSize   = 16
	// Overhead is how many bytes the binary form adds to a plaintext.
	Overhead = 1 + nonceSize + tagSize
)

// formatV1 is the first byte of the binary form of format version 1.
const formatV1 byte = 1

var text = base64.RawURLEncoding

// Key is an unwrapped data key, ready to seal and open. It is safe for
// concurrent use.
type Key struct {
	aead cipher.AEAD
}

// NewKey makes a Key of KeySize raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("personal: a key has %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("personal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("personal: %w", err)
	}
	return &Key{aead: aead}, nil
}

// NewRandomKeyBytes returns KeySize bytes from crypto/rand.
func NewRandomKeyBytes() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // never fails (crypto/rand crashes the process instead)
	return b
}

// Seal encrypts plaintext for the field at path of the aggregate, in the
// binary form of format version 1.
func (k *Key) Seal(aggregateID, path string, plaintext []byte) []byte {
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = formatV1
	_, _ = rand.Read(out[1 : 1+nonceSize])
	return k.aead.Seal(out, out[1:1+nonceSize], plaintext, associatedData(aggregateID, path))
}

// Open decrypts the binary form sealed for the field at path of the
// aggregate: ErrMalformed when it is no known format, ErrAuth when it does
// not authenticate.
func (k *Key) Open(aggregateID, path string, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, at least %d needed", ErrMalformed, len(sealed), Overhead)
	}
	if sealed[0] != formatV1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrMalformed, sealed[0])
	}
	plain, err := k.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], associatedData(aggregateID, path))
	if err != nil {
		return nil, ErrAuth
	}
	return plain, nil
}

// SealString seals a string value into its text form (TextPrefix and
// base64url). An empty value stays empty.
func (k *Key) SealString(aggregateID, path, plaintext string) string {
	if plaintext == "" {
		return ""
	}
	return TextPrefix + text.EncodeToString(k.Seal(aggregateID, path, []byte(plaintext)))
}

// OpenString opens a text form SealString made. A value that is not
// sealed (IsSealed) is returned as it is.
func (k *Key) OpenString(aggregateID, path, value string) (string, error) {
	if !IsSealed(value) {
		return value, nil
	}
	sealed, err := decodeText(value)
	if err != nil {
		return "", err
	}
	plain, err := k.Open(aggregateID, path, sealed)
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

// IsSealed reports whether a string value is in the sealed text form
// (rather than a clear value written before encryption was switched on).
func IsSealed(value string) bool { return strings.HasPrefix(value, TextPrefix) }

// sealedText matches a sealed value inside a larger text (a JSON document,
// a record): the prefix and its base64url body.
var sealedText = regexp.MustCompile(regexp.QuoteMeta(TextPrefix) + `[A-Za-z0-9_-]+`)

// StripSealed returns text with every sealed value cut out: what is left
// is what a scan for personal data in clear must look at (a ciphertext's
// base64 may spell any short word by chance).
func StripSealed(text string) string { return sealedText.ReplaceAllString(text, "") }

func decodeText(value string) ([]byte, error) {
	sealed, err := text.DecodeString(value[len(TextPrefix):])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return sealed, nil
}

// associatedData binds a value to its aggregate and field; the length
// prefix keeps "a"+"b.c" apart from "ab"+".c".
func associatedData(aggregateID, path string) []byte {
	ad := make([]byte, 0, 1+binary.MaxVarintLen64+len(aggregateID)+len(path))
	ad = append(ad, formatV1)
	ad = binary.AppendUvarint(ad, uint64(len(aggregateID)))
	ad = append(ad, aggregateID...)
	return append(ad, path...)
}
