package personal_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/personal"
)

const (
	ann = "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b"
	bob = "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11"
)

func newKey(t testing.TB, b byte) *personal.Key {
	t.Helper()
	k, err := personal.NewKey(bytes.Repeat([]byte{b}, personal.KeySize))
	require.NoError(t, err)
	return k
}

func TestSealOpenString(t *testing.T) {
	k := newKey(t, 1)
	sealed := k.SealString(ann, "name", "Ada Lovelace")
	require.True(t, personal.IsSealed(sealed))
	require.Empty(t, personal.StripSealed(sealed), "nothing of the value is left in clear")
	require.NotEqual(t, sealed, k.SealString(ann, "name", "Ada Lovelace"), "every value has its own nonce")

	got, err := k.OpenString(ann, "name", sealed)
	require.NoError(t, err)
	require.Equal(t, "Ada Lovelace", got)

	require.Empty(t, k.SealString(ann, "name", ""), "an empty value stays empty")
	got, err = k.OpenString(ann, "name", "Ada, stored before encryption")
	require.NoError(t, err)
	require.Equal(t, "Ada, stored before encryption", got, "a clear value reads as it is")
}

func TestOpenRefusesWhatDoesNotBelong(t *testing.T) {
	k := newKey(t, 1)
	sealed := k.SealString(ann, "address.city", "Berlin")
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, personal.TextPrefix))
	require.NoError(t, err)
	raw[len(raw)-20] ^= 1 // a ciphertext byte
	tampered := personal.TextPrefix + base64.RawURLEncoding.EncodeToString(raw)
	truncated := personal.TextPrefix + "AQID"
	for _, c := range []struct {
		name, aggregate, path, value string
		key                          *personal.Key
		want                         error
	}{
		{"another key", ann, "address.city", sealed, newKey(t, 2), personal.ErrAuth},
		{"another aggregate", bob, "address.city", sealed, k, personal.ErrAuth},
		{"another field", ann, "address.line1", sealed, k, personal.ErrAuth},
		{"aggregate and path shifted", ann + "a", "ddress.city", sealed, k, personal.ErrAuth},
		{"altered", ann, "address.city", tampered, k, personal.ErrAuth},
		{"truncated", ann, "address.city", truncated, k, personal.ErrMalformed},
		{"not base64", ann, "address.city", personal.TextPrefix + "!!", k, personal.ErrMalformed},
		{"unknown version", ann, "address.city", personal.TextPrefix + strings.Repeat("A", 40), k, personal.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.key.OpenString(c.aggregate, c.path, c.value)
			require.ErrorIs(t, err, c.want)
		})
	}
}

func TestBinaryFormat(t *testing.T) {
	k := newKey(t, 1)
	sealed := k.Seal(ann, "email", []byte("ada@example.com"))
	require.Len(t, sealed, personal.Overhead+len("ada@example.com"))
	require.Equal(t, byte(1), sealed[0], "format version 1")
	_, err := personal.NewKey(make([]byte, 16))
	require.Error(t, err, "only AES-256")
}

// FuzzOpenString feeds the decoder of sealed values arbitrary text, as a
// corrupt or hostile event_data or record would: it must never panic, and
// a value it opens must seal and open to the same plaintext.
func FuzzOpenString(f *testing.F) {
	k := newKey(f, 7)
	for _, s := range []struct{ aggregate, path, value string }{
		{ann, "name", k.SealString(ann, "name", "Ada Lovelace")},
		{ann, "address.postal_code", k.SealString(ann, "address.postal_code", "10115")},
		{bob, "signature", k.SealString(bob, "signature", "")},
		{bob, "signature", "plain value"},
		{ann, "name", personal.TextPrefix},
		{ann, "name", personal.TextPrefix + "AQ"},
		{ann, "name", personal.TextPrefix + "AQ=="},
		{ann, "name", personal.TextPrefix + strings.Repeat("_", 60)},
	} {
		f.Add(s.aggregate, s.path, s.value)
	}
	f.Fuzz(func(t *testing.T, aggregate, path, value string) {
		plain, err := k.OpenString(aggregate, path, value)
		if err != nil {
			require.True(t, personal.IsSealed(value), "a clear value always reads")
			return
		}
		again, err := k.OpenString(aggregate, path, k.SealString(aggregate, path, plain))
		require.NoError(t, err)
		require.Equal(t, plain, again)
	})
}

func TestStripSealedLeavesOnlyClearText(t *testing.T) {
	k := newKey(t, 1)
	doc := `{"name":"` + k.SealString(ann, "name", "Ada Lovelace") + `","city":"London"}`
	require.Equal(t, `{"name":"","city":"London"}`, personal.StripSealed(doc))
}
