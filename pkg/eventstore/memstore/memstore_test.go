package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
)

// The in-memory twin keeps the event store's contract, with and without
// the index on updated_at.
func TestContract(t *testing.T) {
	for name, opts := range map[string][]memstore.Option{"indexed": nil, "without recent index": {memstore.WithoutRecentIndex()}} {
		t.Run(name, func(t *testing.T) {
			eventstoretest.Suite(t, func(t *testing.T, mutate func(*eventstore.Config)) eventstoretest.Store {
				cfg := eventstore.DefaultConfig()
				if mutate != nil {
					mutate(&cfg)
				}
				s, err := memstore.New(cfg, opts...)
				require.NoError(t, err)
				return s
			})
		})
	}
}

// What only the twin offers: a store without the recent-commits index
// (the full-scan path of the relay) and a hand edit of an event.
func TestTwinOptions(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.New(eventstore.DefaultConfig(), memstore.WithoutRecentIndex())
	require.NoError(t, err)
	require.ErrorIs(t, s.CheckRecent(ctx), memstore.ErrNoRecentIndex)
	require.ErrorIs(t, s.RecentHeads(ctx, time.Time{}, func(eventstore.Head) error { return nil }), memstore.ErrNoRecentIndex)

	id := gocql.UUID(uuid.New())
	_, err = s.Append(ctx, "order", id, 0, []eventstore.Event{{Type: "A", Data: []byte(`{"a":1}`)}, {Type: "B", Data: []byte(`{"b":2}`)}})
	require.NoError(t, err)
	require.True(t, s.ReplaceEventData(id, 2, []byte(`{}`)))
	require.False(t, s.ReplaceEventData(id, 3, []byte(`{}`)), "no such event")
	require.False(t, s.ReplaceEventData(gocql.UUID(uuid.New()), 1, []byte(`{}`)), "no such aggregate")
	var data []string
	require.NoError(t, s.Events(ctx, id, 0, 0, func(e eventstore.Event) error { data = append(data, string(e.Data)); return nil }))
	require.Equal(t, []string{`{"a":1}`, `{}`}, data)

	// The clock stamps commits for RecentHeads.
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	c, err := memstore.New(eventstore.DefaultConfig(), memstore.WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	_, err = c.Append(ctx, "order", id, 0, []eventstore.Event{{Type: "A"}})
	require.NoError(t, err)
	var n int
	count := func(h eventstore.Head) error { n++; return nil }
	require.NoError(t, c.RecentHeads(ctx, now.Add(-time.Millisecond), count))
	require.NoError(t, c.RecentHeads(ctx, now, count))
	require.Equal(t, 1, n, "committed after now-1ms, not after now")

	// A cancelled context fails every read and write.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Append(cctx, "order", gocql.UUID(uuid.New()), 0, []eventstore.Event{{Type: "A"}})
	require.ErrorIs(t, err, context.Canceled)
	_, err = c.Head(cctx, id)
	require.ErrorIs(t, err, context.Canceled)
}
