package personal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/personal"
)

var kek = bytes.Repeat([]byte{0x42}, personal.KeySize)

func newKeyringWith(t *testing.T, store personal.KeyStore, cfg personal.Config) (*personal.Keyring, *prometheus.Registry) {
	t.Helper()
	w, err := personal.NewFileWrapper(kek)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	kr, err := personal.NewKeyring(cfg, store, w, zerolog.Nop(), reg)
	require.NoError(t, err)
	return kr, reg
}

func testConfig() personal.Config {
	cfg := personal.DefaultConfig()
	cfg.KEKFile = "/run/secrets/orderstream-kek"
	return cfg
}

func newKeyring(t *testing.T, store personal.KeyStore) (*personal.Keyring, *prometheus.Registry) {
	t.Helper()
	return newKeyringWith(t, store, testConfig())
}

// counter is the value of a counter, or of one series of a counter vector
// (by its only label's value).
func counter(t *testing.T, reg *prometheus.Registry, name string, label ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(label) == 0 || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label[0]) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s %v", name, label)
	return 0
}

func TestKeyringCreatesOneKeyAndCachesIt(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	kr, reg := newKeyring(t, store)

	_, err := kr.Lookup(ctx, ann)
	require.ErrorIs(t, err, personal.ErrNoKey, "reading creates no key")

	k1, err := kr.KeyFor(ctx, ann)
	require.NoError(t, err)
	k2, err := kr.KeyFor(ctx, ann)
	require.NoError(t, err)
	require.Same(t, k1, k2)
	k3, err := kr.Lookup(ctx, ann)
	require.NoError(t, err)
	require.Same(t, k1, k3)

	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_keys_created_total"))
	require.Equal(t, 2.0, counter(t, reg, "orderstream_personal_key_cache_misses_total"), "the failed lookup and the create")
	require.Equal(t, 2.0, counter(t, reg, "orderstream_personal_key_cache_hits_total"))

	row := store.Rows()[ann]
	require.Len(t, row.WrappedKey, personal.KeySize+personal.Overhead, "the key is stored wrapped")
	sealed := k1.SealString(ann, "name", "Ada")
	fake, err := personal.NewKey(row.WrappedKey[:personal.KeySize])
	require.NoError(t, err)
	_, err = fake.OpenString(ann, "name", sealed)
	require.ErrorIs(t, err, personal.ErrAuth, "the stored bytes are not the key")
}

// Two processes share keys only through the store: what one seals the
// other opens, and concurrent first uses agree on one key.
func TestKeyringsShareKeysThroughTheStore(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	a, regA := newKeyring(t, store)
	b, regB := newKeyring(t, store)

	var wg sync.WaitGroup
	keys := make([]*personal.Key, 2)
	for i, kr := range []*personal.Keyring{a, b} {
		wg.Go(func() {
			k, err := kr.KeyFor(ctx, bob)
			assert.NoError(t, err)
			keys[i] = k
		})
	}
	wg.Wait()
	require.Equal(t, 1.0, counter(t, regA, "orderstream_personal_keys_created_total")+counter(t, regB, "orderstream_personal_keys_created_total"))
	got, err := keys[1].OpenString(bob, "email", keys[0].SealString(bob, "email", "bob@example.com"))
	require.NoError(t, err)
	require.Equal(t, "bob@example.com", got)
}

// stallingStore lets a test hold a Get after it read the store and before
// it returns, as a slow read overtaken by a Forget would be.
type stallingStore struct {
	personal.KeyStore
	read, release chan struct{}
}

func (s *stallingStore) Get(ctx context.Context, id string) (personal.Record, error) {
	r, err := s.KeyStore.Get(ctx, id)
	if s.read != nil {
		s.read <- struct{}{}
		<-s.release
	}
	return r, err
}

// Once Forget returns, this process serves no key of the customer, even
// to a load that read the key before the forget and returns after it.
func TestForgetOvertakesALoadInFlight(t *testing.T) {
	ctx := context.Background()
	mem := personal.NewMemStore()
	setup, _ := newKeyring(t, mem)
	_, err := setup.KeyFor(ctx, ann) // the key exists; the keyring under test has not cached it
	require.NoError(t, err)

	store := &stallingStore{KeyStore: mem, read: make(chan struct{}), release: make(chan struct{})}
	kr, reg := newKeyring(t, store)
	done := make(chan error, 1)
	go func() {
		_, err := kr.Lookup(ctx, ann)
		done <- err
	}()
	<-store.read // the lookup holds the live key
	store.read = nil
	require.NoError(t, kr.Forget(ctx, ann))
	close(store.release)
	require.ErrorIs(t, <-done, personal.ErrForgotten, "a load overtaken by Forget reads again")

	_, err = kr.Lookup(ctx, ann)
	require.ErrorIs(t, err, personal.ErrForgotten, "the cache holds no key of a forgotten customer")
	_, err = kr.KeyFor(ctx, ann)
	require.ErrorIs(t, err, personal.ErrForgotten, "no new key for a forgotten customer")
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_keys_forgotten_total"))
	require.Nil(t, mem.Rows()[ann].WrappedKey)

	require.NoError(t, kr.Forget(ctx, ann), "forgetting twice is no error")
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_keys_forgotten_total"), "and is not counted twice")
}

// Another process serves a forgotten customer's cached key for at most the
// cache TTL: the bound docs/personal-data.md states.
func TestOtherProcessesStopWithinTheCacheTTL(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	now := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, _ := newKeyring(t, store)
	b, regB := newKeyring(t, store)
	personal.SetClock(a, clock)
	personal.SetClock(b, clock)
	_, err := a.KeyFor(ctx, ann)
	require.NoError(t, err)
	_, err = b.Lookup(ctx, ann)
	require.NoError(t, err)

	require.NoError(t, a.Forget(ctx, ann))
	_, err = a.Lookup(ctx, ann)
	require.ErrorIs(t, err, personal.ErrForgotten, "at once in the process that forgot")

	now = now.Add(testConfig().CacheTTL - time.Millisecond)
	_, err = b.Lookup(ctx, ann)
	require.NoError(t, err, "another process serves its cached key until the TTL")
	now = now.Add(time.Millisecond)
	_, err = b.Lookup(ctx, ann)
	require.ErrorIs(t, err, personal.ErrForgotten, "and reads the store again after it")
	require.Equal(t, 2.0, counter(t, regB, "orderstream_personal_key_cache_misses_total"))
}

func TestFileWrapper(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	require.NoError(t, os.WriteFile(raw, kek, 0o600))
	b64 := filepath.Join(dir, "b64")
	require.NoError(t, os.WriteFile(b64, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"), 0o600))
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short, []byte("too short\n"), 0o600))

	for _, p := range []string{raw, b64} {
		got, err := personal.ReadKEKFile(p)
		require.NoError(t, err)
		require.Equal(t, kek, got)
	}
	_, err := personal.ReadKEKFile(short)
	require.ErrorContains(t, err, "want 32 raw bytes or their base64")
	_, err = personal.ReadKEKFile(filepath.Join(dir, "missing"))
	require.Error(t, err)

	w, err := personal.NewFileWrapper(kek)
	require.NoError(t, err)
	other, err := personal.NewFileWrapper(bytes.Repeat([]byte{7}, personal.KeySize))
	require.NoError(t, err)
	require.NotEqual(t, w.KEKID(), other.KEKID())
	require.Regexp(t, `^file:[0-9a-f]{16}$`, w.KEKID())

	dataKey := personal.NewRandomKeyBytes()
	wrapped, err := w.Wrap(ctx, ann, dataKey)
	require.NoError(t, err)
	got, err := w.Unwrap(ctx, ann, w.KEKID(), wrapped)
	require.NoError(t, err)
	require.Equal(t, dataKey, got)
	_, err = w.Unwrap(ctx, bob, w.KEKID(), wrapped)
	require.ErrorIs(t, err, personal.ErrAuth, "a wrapped key opens only for its customer")
	_, err = other.Unwrap(ctx, ann, w.KEKID(), wrapped)
	require.ErrorIs(t, err, personal.ErrUnknownKEK)
}

func TestUnwrapFailureIsCounted(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	a, _ := newKeyring(t, store)
	_, err := a.KeyFor(ctx, ann)
	require.NoError(t, err)

	w, err := personal.NewFileWrapper(bytes.Repeat([]byte{7}, personal.KeySize))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	b, err := personal.NewKeyring(testConfig(), store, w, zerolog.Nop(), reg)
	require.NoError(t, err)
	m := registered()
	require.NoError(t, a.Seal(ctx, m, ann, ann))
	_, err = b.Open(ctx, m, ann, ann)
	require.ErrorIs(t, err, personal.ErrUnknownKEK)
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_decrypt_failures_total", "unknown_kek"))
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, testConfig().Validate())
	err := personal.Config{CacheTTL: 2 * time.Hour}.Validate()
	for _, key := range []string{"kek_file", "cache_ttl", "cache_size", "timeout"} {
		var found bool
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *config.FieldError
			if errors.As(e, &fe) && fe.Key == key {
				found = true
			}
		}
		require.True(t, found, "%s is reported in %v", key, err)
	}
	_, err = personal.NewKeyring(personal.DefaultConfig(), personal.NewMemStore(), nil, zerolog.Nop(), nil)
	require.ErrorContains(t, err, "kek_file")
}

func TestKeyringCanonicalizesCustomerIDs(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	kr, reg := newKeyring(t, store)
	lower, err := kr.KeyFor(ctx, ann)
	require.NoError(t, err)
	other, _ := newKeyring(t, store)
	upper, err := other.Lookup(ctx, strings.ToUpper(ann))
	require.NoError(t, err, "the key unwraps however the id is spelt")
	got, err := upper.OpenString(ann, "name", lower.SealString(ann, "name", "Ada"))
	require.NoError(t, err)
	require.Equal(t, "Ada", got)
	require.Len(t, store.Rows(), 1)

	_, err = kr.KeyFor(ctx, "{"+strings.ToUpper(ann)+"}")
	require.NoError(t, err)
	require.Equal(t, 1.0, counter(t, reg, "orderstream_personal_keys_created_total"))
	_, err = kr.KeyFor(ctx, "customer-1")
	require.ErrorContains(t, err, "not a UUID")
}
