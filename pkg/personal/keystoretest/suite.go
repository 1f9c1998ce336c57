// Package keystoretest is the contract every personal.KeyStore meets: the
// CQL store on customer_keys runs it in an integration test, the in-memory
// twin in a unit test, so that what unit tests of the keyring rely on is
// what Cassandra (and ScyllaDB) do.
package keystoretest

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/personal"
)

// Suite runs the contract against stores made by newStore. Every subtest
// uses customers of its own, so the stores may share one keyspace.
func Suite(t *testing.T, newStore func(t *testing.T) personal.KeyStore) {
	ctx := context.Background()
	at := time.Date(2026, 12, 7, 15, 4, 5, 678_900_000, time.UTC)
	record := func(b byte) personal.Record {
		return personal.Record{WrappedKey: bytes.Repeat([]byte{b}, 60), KEKID: "file:test", CreatedAt: at}
	}
	ms := at.Truncate(time.Millisecond)

	t.Run("a customer without a row has no key", func(t *testing.T) {
		_, err := newStore(t).Get(ctx, uuid.NewString())
		require.ErrorIs(t, err, personal.ErrNoKey)
	})

	t.Run("create stores the key once", func(t *testing.T) {
		s, id := newStore(t), uuid.NewString()
		stored, created, err := s.Create(ctx, id, record(1))
		require.NoError(t, err)
		require.True(t, created)
		want := personal.Record{WrappedKey: record(1).WrappedKey, KEKID: "file:test", CreatedAt: ms}
		require.Equal(t, want, stored)
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.False(t, got.Forgotten())

		again, created, err := s.Create(ctx, id, record(2))
		require.NoError(t, err)
		require.False(t, created, "a second create keeps the first key")
		require.Equal(t, want, again)
	})

	t.Run("concurrent creates agree on one key", func(t *testing.T) {
		s, id := newStore(t), uuid.NewString()
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners int
			keys    = map[string]bool{}
		)
		for i := range n {
			wg.Go(func() {
				stored, created, err := s.Create(ctx, id, record(byte(10+i)))
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				if created {
					winners++
				}
				keys[string(stored.WrappedKey)] = true
			})
		}
		wg.Wait()
		require.Equal(t, 1, winners, "exactly one create stores its key")
		require.Len(t, keys, 1, "every create returns the stored key")
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, keys[string(got.WrappedKey)])
	})

	t.Run("forget destroys the key and bars a new one", func(t *testing.T) {
		s, id := newStore(t), uuid.NewString()
		_, _, err := s.Create(ctx, id, record(3))
		require.NoError(t, err)
		forgot, err := s.Forget(ctx, id, at.Add(time.Hour))
		require.NoError(t, err)
		require.True(t, forgot)
		want := personal.Record{CreatedAt: ms, ForgottenAt: ms.Add(time.Hour)}
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got, "no key bytes and no KEK id are left")
		require.True(t, got.Forgotten())

		stored, created, err := s.Create(ctx, id, record(4))
		require.NoError(t, err)
		require.False(t, created, "a forgotten customer never gets a new key")
		require.Equal(t, want, stored)

		forgot, err = s.Forget(ctx, id, at.Add(2*time.Hour))
		require.NoError(t, err)
		require.False(t, forgot, "forgetting again changes nothing")
		got, err = s.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got, "the first forget's time stays")
	})

	t.Run("forget of a customer without a key bars one", func(t *testing.T) {
		s, id := newStore(t), uuid.NewString()
		forgot, err := s.Forget(ctx, id, at)
		require.NoError(t, err)
		require.True(t, forgot)
		want := personal.Record{ForgottenAt: ms}
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, got)
		stored, created, err := s.Create(ctx, id, record(5))
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, want, stored)
	})

	t.Run("create and forget racing leave a forgotten customer", func(t *testing.T) {
		s, id := newStore(t), uuid.NewString()
		var wg sync.WaitGroup
		wg.Go(func() {
			_, _, err := s.Create(ctx, id, record(6))
			assert.NoError(t, err)
		})
		wg.Go(func() {
			_, err := s.Forget(ctx, id, at)
			assert.NoError(t, err)
		})
		wg.Wait()
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, got.Forgotten())
		require.Nil(t, got.WrappedKey, "whichever came first, no key is left")
	})

	t.Run("customer ids are UUIDs", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, "not-a-uuid")
		require.Error(t, err)
		require.NotErrorIs(t, err, personal.ErrNoKey)
		_, _, err = s.Create(ctx, "not-a-uuid", record(7))
		require.Error(t, err)
		_, err = s.Forget(ctx, "not-a-uuid", at)
		require.Error(t, err)
	})

	t.Run("a cancelled context fails", func(t *testing.T) {
		s := newStore(t)
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Get(cancelled, uuid.NewString())
		require.Error(t, err)
		require.NotErrorIs(t, err, personal.ErrNoKey)
		_, _, err = s.Create(cancelled, uuid.NewString(), record(8))
		require.Error(t, err)
		_, err = s.Forget(cancelled, uuid.NewString(), at)
		require.Error(t, err)
	})
}
