package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
	"github.com/orderstream/orderstream/pkg/relay"
)

// poisoned commits an order whose sequence 2 the relay cannot read,
// followed by a readable sequence 3, and waits until the relay has
// dead-lettered sequence 2 and parked the order.
func (f *fixture) poisoned(ctx context.Context, t *testing.T) (gocql.UUID, deadletter.Entry) {
	t.Helper()
	id := gocql.UUID(uuid.New())
	meta := eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}
	_, err := f.orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{newItem()}}, meta)
	require.NoError(t, err)
	_, err = f.store.Append(ctx, "order", id, 1, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderConfirmed", Version: 1, Data: []byte(`{"not json`)}})
	require.NoError(t, err)
	_, err = f.store.Append(ctx, "order", id, 2, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"c","trackingNumber":"t"}`)}})
	require.NoError(t, err)
	var e deadletter.Entry
	require.Eventually(t, func() bool {
		page, err := deadletter.NewStore(f.session, "").List(ctx, deadletter.Filter{AggregateID: id}, gocql.UUID{}, 10)
		if err != nil || len(page.Entries) != 1 {
			return false
		}
		e = page.Entries[0]
		return true
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, relay.Component, e.Component)
	require.Equal(t, int64(2), e.Sequence)
	require.Equal(t, int64(1), f.published(t, id))
	return id, e
}

func retryRelay(ctx context.Context, t *testing.T, s *gocql.Session, e deadletter.Entry, action deadletter.Action) (deadletter.Result, bool) {
	t.Helper()
	req, created, err := deadletter.NewStore(s, "").Submit(ctx, deadletter.Request{Component: e.Component, AggregateID: e.AggregateID, DLQID: e.ID, Action: action, RequestedBy: "test"})
	require.NoError(t, err)
	res, found, err := deadletter.NewStore(s, "").AwaitResult(ctx, req.ID, 20*time.Millisecond)
	require.NoError(t, err)
	require.True(t, found, "the relay did not carry out the request")
	return res, created
}

// A poison event for the relay: a retry while it is still unreadable
// fails and counts one more failure; once the event is fixed, a retry
// (asked twice at once: one re-drive) publishes it and the event behind
// it, in order and once, and unparks the aggregate, whose next commit then
// flows as usual.
func TestRelayRetryRepublishesInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, func(c *relay.Config) { c.Retry.Every = 50 * time.Millisecond })
	id, e := f.poisoned(ctx, t)

	res, _ := retryRelay(ctx, t, f.session, e, deadletter.ActionRetry)
	require.Equal(t, deadletter.StatusFailed, res.Status, res.Detail)
	require.Equal(t, e.ID, res.HeadDLQID)
	require.Equal(t, int64(1), res.Progress)
	again, found, err := deadletter.NewStore(f.session, "").Get(ctx, e.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 2, again.FailureCount)
	require.Len(t, again.ErrorHistory, 2)
	require.Equal(t, int64(1), f.published(t, id))

	// The operator's fix: the event's payload as its contract has it.
	require.NoError(t, eventstoretest.ReplaceEventData(ctx, f.session, id, 2, []byte(`{}`)))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []deadletter.Result
		created int
	)
	for range 2 {
		wg.Go(func() {
			res, c := retryRelay(ctx, t, f.session, e, deadletter.ActionRetry)
			mu.Lock()
			defer mu.Unlock()
			results = append(results, res)
			if c {
				created++
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, created, "two retries at once are one request")
	for _, res := range results {
		require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
		require.Equal(t, int64(2), res.Applied)
		require.Equal(t, int64(3), res.Progress)
	}
	require.Equal(t, results[0].RequestID, results[1].RequestID)
	require.Equal(t, int64(3), f.published(t, id))
	_, found, err = deadletter.NewStore(f.session, "").Get(ctx, e.ID)
	require.NoError(t, err)
	require.False(t, found)
	_, parked, err := deadletter.NewStore(f.session, "").ReadParked(ctx, relay.Component, id)
	require.NoError(t, err)
	require.False(t, parked)

	_, err = f.orders.Handle(ctx, id, order.DeliverOrder{}, eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.consumed.countFor(map[string]int64{id.String(): 4}) == 4 }, 20*time.Second, 20*time.Millisecond)
	f.stop()
	f.consumed.mu.Lock()
	defer f.consumed.mu.Unlock()
	require.Equal(t, []int64{1, 2, 3, 4}, f.consumed.byKey[id.String()], "in order, each once")
}

// A skip records the poison event as published without publishing it and
// publishes the events behind it.
func TestRelaySkipMovesPastThePoisonEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(ctx, t, func(c *relay.Config) { c.Retry.Every = 50 * time.Millisecond })
	id, e := f.poisoned(ctx, t)

	res, _ := retryRelay(ctx, t, f.session, e, deadletter.ActionSkip)
	require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
	require.Equal(t, int64(1), res.Applied, "sequence 3; sequence 2 is skipped")
	require.Equal(t, int64(3), f.published(t, id))
	_, found, err := deadletter.NewStore(f.session, "").Get(ctx, e.ID)
	require.NoError(t, err)
	require.False(t, found)
	require.Eventually(t, func() bool { return f.consumed.countFor(map[string]int64{id.String(): 3}) == 2 }, 20*time.Second, 20*time.Millisecond)
	f.stop()
	f.consumed.mu.Lock()
	defer f.consumed.mu.Unlock()
	require.Equal(t, []int64{1, 3}, f.consumed.byKey[id.String()])
}
