package personal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
)

// KeyWrapper wraps and unwraps data keys with a key-encryption key (KEK)
// that never reaches the database. FileWrapper holds the KEK in process; a
// KMS-backed wrapper would call the KMS in Wrap and Unwrap (the context
// bounds that call).
type KeyWrapper interface {
	// KEKID names the KEK that Wrap uses; it is stored with each wrapped
	// key so that a process can tell which KEK unwraps it.
	KEKID() string
	// Wrap encrypts a data key of the customer.
	Wrap(ctx context.Context, customerID string, dataKey []byte) ([]byte, error)
	// Unwrap decrypts a data key of the customer wrapped by the KEK named
	// kekID; ErrUnknownKEK when this wrapper does not hold that KEK.
	Unwrap(ctx context.Context, customerID, kekID string, wrapped []byte) ([]byte, error)
}

// wrapPath is the associated data's "field" of a wrapped key: a wrapped key
// opens only for the customer it was wrapped for.
const wrapPath = "customer_keys.wrapped_key"

// FileWrapper wraps data keys with AES-256-GCM under a KEK read from a
// file, such as a Kubernetes Secret mounted into the pod.
type FileWrapper struct {
	id  string
	kek *Key
}

// NewFileWrapper wraps with kek (KeySize bytes). Its KEKID is "file:" and
// the first 8 bytes of the KEK's SHA-256 in hex: stable for one KEK,
// different for another, and no help to anyone guessing it.
func NewFileWrapper(kek []byte) (*FileWrapper, error) {
	k, err := NewKey(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	sum := sha256.Sum256(kek)
	return &FileWrapper{id: "file:" + hex.EncodeToString(sum[:8]), kek: k}, nil
}

// ReadKEKFile reads a KEK from path: either KeySize raw bytes, or their
// standard base64 (what `head -c 32 /dev/urandom | base64` prints), with
// surrounding white space ignored.
func ReadKEKFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key-encryption key: %w", err)
	}
	if len(b) == KeySize {
		return b, nil
	}
	decoded, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(decoded) != KeySize {
		return nil, fmt.Errorf("key-encryption key in %s: want %d raw bytes or their base64, got %d bytes", path, KeySize, len(b))
	}
	return decoded, nil
}

// KEKID implements KeyWrapper.
func (w *FileWrapper) KEKID() string { return w.id }

// Wrap implements KeyWrapper.
func (w *FileWrapper) Wrap(_ context.Context, customerID string, dataKey []byte) ([]byte, error) {
	return w.kek.Seal(customerID, wrapPath, dataKey), nil
}

// Unwrap implements KeyWrapper.
func (w *FileWrapper) Unwrap(_ context.Context, customerID, kekID string, wrapped []byte) ([]byte, error) {
	if kekID != w.id {
		return nil, fmt.Errorf("%w: %q (this process holds %q)", ErrUnknownKEK, kekID, w.id)
	}
	key, err := w.kek.Open(customerID, wrapPath, wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrapping the data key of customer %s: %w", customerID, err)
	}
	return key, nil
}
