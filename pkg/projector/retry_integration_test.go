package projector_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// faulty wraps a view so that Fold fails the events fail picks.
func faulty[S any](v projector.View[S], fail func(eventstore.Event) bool) projector.View[S] {
	fold := v.Fold
	v.Fold = func(s S, e eventstore.Event) (S, error) {
		if fail(e) {
			return s, fmt.Errorf("injected failure of %s %d", e.Type, e.Sequence)
		}
		return fold(s, e)
	}
	return v
}

func orderItem(t *testing.T, sku string) value.OrderItem {
	t.Helper()
	eur, err := value.NewCurrency("EUR")
	require.NoError(t, err)
	price, err := value.NewMoney(100, eur)
	require.NoError(t, err)
	it, err := value.NewOrderItem(sku, 1, price)
	require.NoError(t, err)
	return it
}

// A projector member (B) consumes an order whose events 3..7 its view
// cannot fold: it dead-letters 3 and parks the order, skipping 4..7.
// Another member of the same projector (A) carries out the retry requests:
// one while the cause is still there fails and counts a failure; once
// fixed, two at once are one re-drive that applies 3..7 once, in order,
// and unparks. B, whose parked set is stale, skips 8 meanwhile; when it
// reloads the set it sees the order unparked and catches it up, so the
// read model ends exact.
func TestRetryReappliesAndOtherMembersCatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	session, _ := stacktest.PrivateKeyspace(t, "projretry_")
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 5}, zerolog.Nop(), nil)
	require.NoError(t, err)

	id := gocql.UUID(uuid.New())
	var broken atomic.Bool
	broken.Store(true)
	view := faulty(readmodel.OrderReadModel(), func(e eventstore.Event) bool {
		return broken.Load() && e.AggregateID == id && e.Sequence >= 3 && e.Sequence <= 7
	})
	member := func(parkedEvery time.Duration) (*projector.Projector[readmodel.Order], *prometheus.Registry) {
		cfg := projector.DefaultConfig()
		cfg.ParkedEvery = parkedEvery
		cfg.Retry.Every = 50 * time.Millisecond
		reg := prometheus.NewRegistry()
		p, err := projector.New(cfg, view, session, store, zerolog.Nop(), reg)
		require.NoError(t, err)
		return p, reg
	}
	a, _ := member(100 * time.Millisecond)
	b, _ := member(time.Hour) // its parked set goes stale

	meta := func() eventstore.Metadata { return eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()} }
	commands := []order.Command{order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{orderItem(t, "a")}}}
	for _, sku := range []string{"b", "c", "d", "e", "f"} {
		commands = append(commands, order.UpdateItems{Items: []value.OrderItem{orderItem(t, sku)}})
	}
	commands = append(commands, order.ConfirmOrder{})
	for _, c := range commands {
		_, err := orders.Handle(ctx, id, c, meta())
		require.NoError(t, err)
	}
	feed := func(p *projector.Projector[readmodel.Order], from, to int64) {
		require.NoError(t, store.Events(ctx, id, from-1, to, func(e eventstore.Event) error {
			return p.Handle(ctx, projector.Record{AggregateID: id, Sequence: e.Sequence, Event: e})
		}))
	}
	version := func() int64 {
		row, ok, err := readmodel.ReadOrder(ctx, session, id)
		require.NoError(t, err)
		require.True(t, ok)
		return row.Version
	}
	feed(b, 1, 7)
	require.Equal(t, int64(2), version())
	page, err := deadletter.NewStore(session, "").List(ctx, deadletter.Filter{AggregateID: id}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1, "one dead letter: the head; 4..7 wait behind it")
	head := page.Entries[0]
	require.Equal(t, int64(3), head.Sequence)
	require.Equal(t, b.Component(), head.Component)

	stop := a.ServeRetries(ctx)
	defer stop()
	retry := func() (deadletter.Result, bool) {
		req, created, err := deadletter.NewStore(session, "").Submit(ctx, deadletter.Request{Component: head.Component, AggregateID: id, DLQID: head.ID, Action: deadletter.ActionRetry, RequestedBy: "test"})
		require.NoError(t, err)
		res, found, err := deadletter.NewStore(session, "").AwaitResult(ctx, req.ID, 20*time.Millisecond)
		require.NoError(t, err)
		require.True(t, found)
		return res, created
	}
	res, _ := retry()
	require.Equal(t, deadletter.StatusFailed, res.Status)
	require.Equal(t, head.ID, res.HeadDLQID)
	require.Contains(t, res.Detail, "injected failure")
	e, _, err := deadletter.NewStore(session, "").Get(ctx, head.ID)
	require.NoError(t, err)
	require.Equal(t, 2, e.FailureCount)
	require.Equal(t, int64(2), version())

	broken.Store(false)
	before := testutil.ToFloat64(a.Metrics().Applied)
	var (
		wg      sync.WaitGroup
		created atomic.Int32
	)
	for range 2 {
		wg.Go(func() {
			res, c := retry()
			if c {
				created.Add(1)
			}
			require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
			require.Equal(t, int64(7), res.Progress)
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), created.Load())
	require.Equal(t, 5.0, testutil.ToFloat64(a.Metrics().Applied)-before, "3..7 applied once")
	require.Equal(t, int64(7), version())

	// B still holds the order parked: a new event's record is skipped.
	_, err = orders.Handle(ctx, id, order.ShipOrder{Carrier: "c", TrackingNumber: "t"}, meta())
	require.NoError(t, err)
	feed(b, 8, 8)
	require.Equal(t, int64(7), version())
	b.RefreshParked(ctx)
	b.CatchUpUnparked(ctx)
	require.Equal(t, int64(8), version())
	row, _, err := readmodel.ReadOrder(ctx, session, id)
	require.NoError(t, err)
	require.Equal(t, "SHIPPED", row.Status)
	require.Len(t, row.Items, 1)
	require.Equal(t, "f", row.Items[0].ProductID)
}
