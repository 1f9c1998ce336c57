package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/relay"
)

func item(t *testing.T, sku string) value.OrderItem {
	t.Helper()
	eur, err := value.NewCurrency("EUR")
	require.NoError(t, err)
	price, err := value.NewMoney(250, eur)
	require.NoError(t, err)
	it, err := value.NewOrderItem(sku, 2, price)
	require.NoError(t, err)
	return it
}

// handle commits order commands.
func (e *env) handle(ctx context.Context, id gocql.UUID, cmds ...order.Command) {
	e.t.Helper()
	for _, c := range cmds {
		_, err := e.orders.Handle(ctx, id, c, meta())
		require.NoError(e.t, err)
	}
}

func (e *env) orderVersion(ctx context.Context, id gocql.UUID) int64 {
	e.t.Helper()
	row, ok, err := readmodel.ReadOrder(ctx, e.session, id)
	require.NoError(e.t, err)
	require.True(e.t, ok)
	return row.Version
}

// Events 3..7 of one order fail in the order-read-model projector (a bug
// for that order): the projector dead-letters 3 and parks the order while
// every other aggregate, and the other projectors, flow on. Retries and
// purges without the token are refused and change nothing; a retry while
// the bug is there fails and counts; once fixed, the head is retried twice
// at once: one re-drive applies 3..8 in order, once, the order is
// unparked, the read models are exact, and the stats follow every step.
func TestProjectorFailuresParkedThenRetriedInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEnv(t)
	x := gocql.UUID(uuid.New())
	var broken atomic.Bool
	broken.Store(true)
	view := faulty(readmodel.OrderReadModel(), func(ev eventstore.Event) bool {
		return broken.Load() && ev.AggregateID == x && ev.Sequence >= 3 && ev.Sequence <= 7
	})
	p := startPipeline(ctx, t, e, &view)

	cmds := []order.Command{order.CreateOrder{OrderID: x.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item(t, "a")}}}
	for _, sku := range []string{"b", "c", "d", "e", "f"} {
		cmds = append(cmds, order.UpdateItems{Items: []value.OrderItem{item(t, sku)}})
	}
	cmds = append(cmds, order.ConfirmOrder{}) // 7 events
	e.handle(ctx, x, cmds...)
	_, err := loadgen.Run(ctx, loadgen.Config{Commands: 200, Aggregates: 24, Workers: 4, Seed: rand.Uint64()}, e.orders, e.customers)
	require.NoError(t, err)

	// The dead letter appears; the order is parked; the rest flows.
	got := e.waitEntries("aggregate_id="+x.String(), 1, time.Minute)
	head := got[0]
	id := head["id"].(string)
	require.Equal(t, "projector/order-read-model", head["component"])
	require.Equal(t, "OrderItemsUpdated", head["event_type"])
	require.EqualValues(t, 3, head["sequence_number"])
	require.Equal(t, true, head["parks_aggregate"])
	require.EqualValues(t, 1, head["failure_count"])
	require.Contains(t, head["error_message"], "injected failure")
	e.published(ctx)
	left := e.exactExcept(ctx, time.Minute, x)
	require.NotEmpty(t, left, "the parked order's row is behind")
	require.Equal(t, int64(2), e.orderVersion(ctx, x))

	detail := e.ok(e.get("/v1/dlq/" + id))
	require.Equal(t, true, detail["head"])
	require.EqualValues(t, 4, detail["waiting_events"], "4..7 wait behind it")
	require.Contains(t, detail["payload"], `"productId":"c"`)
	require.Len(t, detail["error_history"], 1)
	require.Nil(t, detail["pending_request"])

	st := e.stats()
	require.EqualValues(t, 1, st["total"])
	require.Equal(t, map[string]int{"projector/order-read-model": 1}, counts(st["by_component"]))
	require.Equal(t, map[string]int{"OrderItemsUpdated": 1}, counts(st["by_event_type"]))
	require.Equal(t, map[string]int{"projector/order-read-model": 1}, counts(st["parked_aggregates"]))
	require.EqualValues(t, 1, st["parked_total"])
	require.Equal(t, id, st["oldest"].(map[string]any)["id"])
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.messages.WithLabelValues("projector/order-read-model", "OrderItemsUpdated")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.parked.WithLabelValues("projector/order-read-model")))

	// More events of the parked order wait too.
	e.handle(ctx, x, order.ShipOrder{Carrier: "c", TrackingNumber: "t"}) // 8
	e.published(ctx)
	require.Equal(t, int64(2), e.orderVersion(ctx, x))

	// Without the token: refused, nothing changes.
	e.problem(e.do(http.MethodPost, "/v1/dlq/"+id+"/retry", nil), http.StatusUnauthorized, "unauthorized", "")
	e.problem(e.do(http.MethodPost, "/v1/dlq/"+id+"/retry", nil, "Authorization", "Bearer wrong-token-of-some-length"), http.StatusForbidden, "forbidden", "")
	e.problem(e.do(http.MethodPost, "/v1/dlq/"+id+"/retry", nil, "Authorization", "Basic "+testToken), http.StatusUnauthorized, "unauthorized", "")
	e.problem(e.do(http.MethodPost, "/v1/dlq/retry", map[string]any{"all": true}), http.StatusUnauthorized, "unauthorized", "")
	e.problem(e.do(http.MethodDelete, "/v1/dlq/"+id+"?skip=true", nil, "Authorization", "Bearer nope"), http.StatusForbidden, "forbidden", "")
	e.problem(e.do(http.MethodDelete, "/v1/dlq?all=true", nil), http.StatusUnauthorized, "unauthorized", "")
	unchanged := e.ok(e.get("/v1/dlq/" + id))
	require.EqualValues(t, 1, unchanged["failure_count"])
	require.Nil(t, unchanged["pending_request"])
	require.Equal(t, 0, e.count(`SELECT count(*) FROM dlq_retry_requests`))
	require.Equal(t, 0, e.count(`SELECT count(*) FROM dlq_retry_results`))
	require.EqualValues(t, 1, e.stats()["total"])

	// Purging the head without skip would reorder events: refused.
	e.problem(e.do(http.MethodDelete, "/v1/dlq/"+id, nil, authed...), http.StatusConflict, "parked-head", "")

	// A retry while the bug is there fails, and counts.
	out := e.ok(e.do(http.MethodPost, "/v1/dlq/"+id+"/retry", nil, authed...))
	require.Equal(t, "failed", out["status"], out)
	require.Equal(t, id, out["head_dlq_id"])
	require.Equal(t, "alice", out["requested_by"])
	require.EqualValues(t, 2, out["progress"])
	again := e.ok(e.get("/v1/dlq/" + id))
	require.EqualValues(t, 2, again["failure_count"])
	require.Len(t, again["error_history"], 2)
	require.Equal(t, int64(2), e.orderVersion(ctx, x))
	require.EqualValues(t, 1, e.stats()["parked_total"])

	// Fixed; the head retried twice at once.
	broken.Store(false)
	before := testutil.ToFloat64(p.orderRM.Metrics().Applied)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []answer
	)
	for range 2 {
		wg.Go(func() {
			a := e.do(http.MethodPost, "/v1/dlq/"+id+"/retry", nil, authed...)
			mu.Lock()
			outs = append(outs, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	succeeded := 0
	for _, a := range outs {
		switch {
		case a.Status == http.StatusOK && a.Body["status"] == "succeeded":
			succeeded++
			require.EqualValues(t, 8, a.Body["progress"], a.Raw)
			require.EqualValues(t, 6, a.Body["applied"], a.Raw)
		case a.Status == http.StatusOK && a.Body["status"] == "gone", a.Status == http.StatusNotFound:
			// The second came after the first had resolved it.
		default:
			t.Fatalf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	require.GreaterOrEqual(t, succeeded, 1)
	t.Logf("two retries at once: %d %s / %d %s", outs[0].Status, outs[0].Raw, outs[1].Status, outs[1].Raw)
	require.Equal(t, 6.0, testutil.ToFloat64(p.orderRM.Metrics().Applied)-before, "3..8 applied once")
	require.Equal(t, int64(8), e.orderVersion(ctx, x))
	e.exactExcept(ctx, 30*time.Second)
	e.problem(e.get("/v1/dlq/"+id), http.StatusNotFound, "not-found", "id")
	st = e.stats()
	require.EqualValues(t, 0, st["total"])
	require.EqualValues(t, 0, st["parked_total"])
	require.Nil(t, st["oldest"])
	require.Equal(t, 0.0, testutil.ToFloat64(e.api.q.m.parked.WithLabelValues("projector/order-read-model")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.failed.WithLabelValues("projector/order-read-model", "retry")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.succeeded.WithLabelValues("projector/order-read-model", "retry")))

	// Unparked: the next event flows as usual.
	e.handle(ctx, x, order.DeliverOrder{})
	require.Eventually(t, func() bool { return e.orderVersion(ctx, x) == 9 }, 30*time.Second, 50*time.Millisecond)
}

// Several dead letters of two event types and an unreadable record: a
// bulk retry by event type re-drives the fixed ones (rate-limited), one
// by component counts what fails again and what cannot be retried; a
// purge by filter refuses heads of parked aggregates without skip, purges
// the unreadable record, and with skip moves the projector past the
// cancellations; the stats follow every step.
func TestBulkRetryAndPurgeByFilter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEnv(t, func(c *Config) { c.DLQ.BulkRate, c.DLQ.BulkBurst = 10, 1 })
	var shipBroken, cancelBroken atomic.Bool
	shipBroken.Store(true)
	cancelBroken.Store(true)
	view := faulty(readmodel.OrderReadModel(), func(ev eventstore.Event) bool {
		return (ev.Type == order.EventOrderShipped && shipBroken.Load()) || (ev.Type == order.EventOrderCancelled && cancelBroken.Load())
	})
	p := startPipeline(ctx, t, e, &view)
	const component = "projector/order-read-model"

	var shipped, cancelled []gocql.UUID
	for range 5 {
		id := gocql.UUID(uuid.New())
		e.handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item(t, "a")}},
			order.ConfirmOrder{}, order.ShipOrder{Carrier: "c", TrackingNumber: "t"})
		shipped = append(shipped, id)
	}
	for range 3 {
		id := gocql.UUID(uuid.New())
		e.handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item(t, "a")}},
			order.CancelOrder{Reason: "r", CancelledBy: "customer"})
		cancelled = append(cancelled, id)
	}
	e.waitEntries("component="+component, 8, time.Minute)
	rawSince := time.Now().UTC()
	// A record no projector can place: each of the three order projectors
	// dead-letters it.
	p.produce(t, "not-an-aggregate-id", "{}")
	e.waitEntries("since="+rawSince.Format(time.RFC3339Nano), 3, time.Minute)

	st := e.stats()
	require.EqualValues(t, 11, st["total"])
	require.Equal(t, map[string]int{"OrderShipped": 5, "OrderCancelled": 3}, counts(st["by_event_type"]))
	require.Equal(t, map[string]int{component: 9, "projector/orders-by-customer": 1, "projector/orders-by-status": 1}, counts(st["by_component"]))
	require.EqualValues(t, 8, st["parked_total"])
	require.Equal(t, 5.0, testutil.ToFloat64(e.api.q.m.messages.WithLabelValues(component, "OrderShipped")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.messages.WithLabelValues(component, noEventType)))

	// A bulk call needs a filter, or all=true.
	e.problem(e.do(http.MethodPost, "/v1/dlq/retry", map[string]any{}, authed...), http.StatusBadRequest, "invalid-parameter", "all")

	// Bulk retry by event type, once fixed: at 10 per second after a
	// burst of one, five requests take at least 0.4 s.
	shipBroken.Store(false)
	start := time.Now()
	bulk := e.ok(e.do(http.MethodPost, "/v1/dlq/retry", map[string]any{"event_type": "OrderShipped"}, authed...))
	require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "rate-limited")
	require.EqualValues(t, 5, bulk["matched"])
	require.EqualValues(t, 5, bulk["succeeded"], bulk)
	require.EqualValues(t, 0, bulk["failed"])
	require.Equal(t, true, bulk["complete"])
	st = e.stats()
	require.EqualValues(t, 6, st["total"])
	require.Equal(t, map[string]int{"OrderCancelled": 3}, counts(st["by_event_type"]))
	require.EqualValues(t, 3, st["parked_total"])
	for _, id := range shipped {
		require.Equal(t, int64(3), e.orderVersion(ctx, id))
	}

	// Bulk retry by component while cancellations still fail.
	bulk = e.ok(e.do(http.MethodPost, "/v1/dlq/retry", map[string]any{"component": component}, authed...))
	require.EqualValues(t, 4, bulk["matched"])
	require.EqualValues(t, 3, bulk["failed"], bulk)
	require.EqualValues(t, 1, bulk["not_retriable"])
	require.EqualValues(t, 0, bulk["succeeded"])
	for _, x := range e.entries("event_type=OrderCancelled") {
		require.EqualValues(t, 2, x["failure_count"])
	}
	require.EqualValues(t, 6, e.stats()["total"])

	// Purge by filter: heads of parked aggregates need skip; nothing is
	// purged without it.
	e.problem(e.do(http.MethodDelete, "/v1/dlq?component="+component, nil, authed...), http.StatusConflict, "parked-head", "")
	e.problem(e.do(http.MethodDelete, "/v1/dlq?event_type=OrderCancelled&skip=false", nil, authed...), http.StatusConflict, "parked-head", "")
	require.EqualValues(t, 6, e.stats()["total"])
	// The unreadable record's dead letters are no heads: purged by a time
	// filter.
	purge := e.ok(e.do(http.MethodDelete, "/v1/dlq?since="+rawSince.Format(time.RFC3339Nano), nil, authed...))
	require.EqualValues(t, 3, purge["matched"])
	require.EqualValues(t, 3, purge["purged"])
	st = e.stats()
	require.EqualValues(t, 3, st["total"])
	require.Equal(t, 0.0, testutil.ToFloat64(e.api.q.m.messages.WithLabelValues(component, noEventType)))

	// With skip: the projector moves past each cancellation without its
	// effect, and the dead letters go.
	purge = e.ok(e.do(http.MethodDelete, "/v1/dlq?event_type=OrderCancelled&skip=true", nil, authed...))
	require.EqualValues(t, 3, purge["matched"])
	require.EqualValues(t, 3, purge["purged"], purge)
	require.EqualValues(t, 3, purge["succeeded"])
	st = e.stats()
	require.EqualValues(t, 0, st["total"])
	require.EqualValues(t, 0, st["parked_total"])
	for _, id := range cancelled {
		row, ok, err := readmodel.ReadOrder(ctx, e.session, id)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int64(2), row.Version, "the skipped event's sequence")
		require.Equal(t, "CREATED", row.Status, "without its effect")
		require.False(t, row.IsDeleted)
	}
	// Everything else is exact; the skipped cancellations are the only
	// difference, by design.
	left := e.exactExcept(ctx, 30*time.Second, cancelled...)
	require.NotEmpty(t, left)
	require.Equal(t, 3.0, testutil.ToFloat64(e.api.q.m.purged.WithLabelValues(component, "skip")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.purged.WithLabelValues(component, "delete")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.api.q.m.purged.WithLabelValues("projector/orders-by-status", "delete")))
	require.Equal(t, 5.0, testutil.ToFloat64(e.api.q.m.succeeded.WithLabelValues(component, "retry")))
	require.Equal(t, 3.0, testutil.ToFloat64(e.api.q.m.failed.WithLabelValues(component, "retry")))
}

// The relay's dead letter through the API: listed by component, its head
// not purgeable without skip, a retry before the fix fails, after it the
// relay publishes the event and the one behind it.
func TestRelayDeadLetterRetriedThroughTheAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t)
	startPipeline(ctx, t, e, nil)
	id := gocql.UUID(uuid.New())
	e.handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item(t, "a")}})
	_, err := e.store.Append(ctx, "order", id, 1, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderConfirmed", Version: 1, Data: []byte(`{"not json`)}})
	require.NoError(t, err)
	_, err = e.store.Append(ctx, "order", id, 2, []eventstore.Event{{EventID: gocql.UUID(uuid.New()), Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"c","trackingNumber":"t"}`)}})
	require.NoError(t, err)
	head := e.waitEntries("component="+relay.Component, 1, 30*time.Second)[0]
	dlq := head["id"].(string)
	require.EqualValues(t, 2, head["sequence_number"])
	require.Equal(t, true, e.ok(e.get("/v1/dlq/" + dlq))["head"])

	e.problem(e.do(http.MethodDelete, "/v1/dlq/"+dlq, nil, authed...), http.StatusConflict, "parked-head", "")
	out := e.ok(e.do(http.MethodPost, "/v1/dlq/"+dlq+"/retry", nil, authed...))
	require.Equal(t, "failed", out["status"], out)

	require.NoError(t, eventstoretest.ReplaceEventData(ctx, e.session, id, 2, []byte("{}")))
	out = e.ok(e.do(http.MethodPost, "/v1/dlq/"+dlq+"/retry", nil, authed...))
	require.Equal(t, "succeeded", out["status"], out)
	require.EqualValues(t, 3, out["progress"])
	e.published(ctx)
	require.EqualValues(t, 0, e.stats()["total"])
	_, parked, err := e.dlq.ReadParked(ctx, relay.Component, id)
	require.NoError(t, err)
	require.False(t, parked)
}
