//go:build fault

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
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
)

// activeGens is how query-service picks the tables to read: each view's
// active generation, re-read at most every ttl, never going back.
type activeGens struct {
	session *gocql.Session
	ttl     time.Duration
	mu      sync.Mutex
	gens    map[string]int
	readAt  time.Time
}

func (a *activeGens) of(ctx context.Context, view string) (readmodel.Generation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gens == nil || time.Since(a.readAt) >= a.ttl {
		fresh, err := projector.ReadGenerations(ctx, a.session)
		if err != nil {
			return 0, err
		}
		if a.gens == nil {
			a.gens = map[string]int{}
		}
		for name, g := range fresh {
			a.gens[name] = max(a.gens[name], g.Active)
		}
		a.readAt = time.Now()
	}
	return readmodel.Generation(max(a.gens[view], 1)), nil
}

// readerStats is what the readers saw go wrong.
type readerStats struct {
	reads, failed, disappeared, wentBack, minVersionMissed, minVersionReads atomic.Int64
	maxWait                                                                 atomic.Int64 // of a min_version read, ns
	maxWaitAt                                                               atomic.Int64 // when the longest one started, unix ns
	mu                                                                      sync.Mutex
	examples                                                                []string
}

func (s *readerStats) bad(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.examples) < 10 {
		s.examples = append(s.examples, fmt.Sprintf(format, args...))
	}
}

// readOrders reads the orders by id, and the orders of their customers,
// as query-service does, until ctx ends: a read must not fail, a row once
// seen must not disappear, and its version must not go back.
func readOrders(ctx context.Context, session *gocql.Session, gens *activeGens, ids []gocql.UUID, customers map[gocql.UUID]gocql.UUID, st *readerStats) {
	seen := map[gocql.UUID]int64{}
	listed := map[gocql.UUID]int64{}
	for ctx.Err() == nil {
		for _, id := range ids {
			time.Sleep(5 * time.Millisecond) // about 200 reads a second per reader
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			gen, err := gens.of(rctx, "order-read-model")
			var (
				row   readmodel.OrderRow
				found bool
			)
			if err == nil {
				row, found, err = gen.ReadOrder(rctx, session, id)
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			st.reads.Add(1)
			switch last, ok := seen[id]; {
			case err != nil:
				st.bad(&st.failed, "read of order %s: %v", id, err)
			case !found && ok:
				st.bad(&st.disappeared, "order %s at version %d disappeared (generation %d)", id, last, gen)
			case found && row.Version < last:
				st.bad(&st.wentBack, "order %s went back from version %d to %d (generation %d)", id, last, row.Version, gen)
			case found:
				seen[id] = row.Version
			}
			customer := customers[id]
			rctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			gen, err = gens.of(rctx, "orders-by-customer")
			var rows []readmodel.CustomerOrderRow
			if err == nil {
				rows, err = gen.OrdersOfCustomer(rctx, session, customer)
			}
			cancel()
			if ctx.Err() != nil {
				return
			}
			st.reads.Add(1)
			if err != nil {
				st.bad(&st.failed, "listing the orders of %s: %v", customer, err)
				continue
			}
			var version int64 = -1
			for _, r := range rows {
				if r.OrderID == id {
					version = r.Version
				}
			}
			switch last, ok := listed[id]; {
			case version < 0 && ok:
				st.bad(&st.disappeared, "order %s left the listing of its customer (generation %d)", id, gen)
			case version >= 0 && version < last:
				st.bad(&st.wentBack, "order %s went back in its customer's listing from %d to %d", id, last, version)
			case version >= 0:
				listed[id] = version
			}
		}
	}
}

// writeAndRead commits a command on an order of its own and reads the
// order with min_version (the version the command answered), as a client
// of query-service does: the read must reach it within the bound.
func writeAndRead(ctx context.Context, t *testing.T, h *harness, gens *activeGens, st *readerStats) {
	eur, err := value.NewCurrency("EUR")
	require.NoError(t, err)
	price, err := value.NewMoney(1000, eur)
	require.NoError(t, err)
	item, err := value.NewOrderItem("sku-rebuild", 1, price)
	require.NoError(t, err)
	for ctx.Err() == nil {
		id := gocql.TimeUUID()
		var version int64
		for i, cmd := range []order.Command{
			order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}},
			order.ConfirmOrder{},
		} {
			res, err := h.orders.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "rebuild-it", Now: time.Now()})
			if ctx.Err() != nil {
				return
			}
			require.NoError(t, err, "command %d", i)
			version = res.Version
		}
		// min_version: wait, bounded, until the read model has it.
		st.minVersionReads.Add(1)
		waitStart := time.Now()
		// The bound is far above query.min_version_timeout: what is checked
		// is that the version is reached across the switch, not how fast
		// two shared cores get there under this load.
		deadline := waitStart.Add(30 * time.Second)
		for {
			gen, err := gens.of(ctx, "order-read-model")
			var row readmodel.OrderRow
			found := false
			if err == nil {
				row, found, err = gen.ReadOrder(ctx, h.session, id)
			}
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				st.bad(&st.failed, "min_version read of %s: %v", id, err)
			}
			if found && row.Version >= version {
				if w := int64(time.Since(waitStart)); w > st.maxWait.Load() {
					st.maxWait.Store(w)
					st.maxWaitAt.Store(waitStart.UnixNano())
				}
				break
			}
			if time.Now().After(deadline) {
				st.bad(&st.minVersionMissed, "order %s did not reach version %d within 30s (generation %d)", id, version, gen)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Under a steady load of commands and reads, each view is rebuilt into a
// new generation and switched to: no read fails, no row disappears or
// goes back in version, every min_version read reaches its version, a
// second rebuild is refused while one runs, and at the end every view
// (its active generation) equals the fold of event_store.
func TestFaultRebuildWithoutDowntime(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	ps := runAll(ctx, t, h)
	load(ctx, t, h, 800, 120)
	h.requireExact(ctx, t, time.Minute)

	// The orders to read, with their customers.
	customers := map[gocql.UUID]gocql.UUID{}
	var ids []gocql.UUID
	require.NoError(t, h.store.Heads(ctx, func(hd eventstore.Head) error {
		if hd.AggregateType == order.AggregateType && len(ids) < 40 {
			row, ok, err := readmodel.ReadOrder(ctx, h.session, hd.AggregateID)
			if err != nil || !ok {
				return err
			}
			ids = append(ids, hd.AggregateID)
			customers[hd.AggregateID] = row.CustomerID
		}
		return nil
	}))
	require.NotEmpty(t, ids)

	gens := &activeGens{session: h.session, ttl: time.Second}
	var st readerStats
	rctx, stopReads := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() { readOrders(rctx, h.session, gens, ids, customers, &st) })
	}
	readers.Go(func() { writeAndRead(rctx, t, h, gens, &st) })
	var loading sync.WaitGroup
	loading.Go(func() { load(ctx, t, h, 1500, 150) })
	time.Sleep(3 * time.Second) // the same load and reads before the rebuilds, to compare
	t.Logf("before the rebuilds: %d min_version reads, the longest wait %s", st.minVersionReads.Load(), time.Duration(st.maxWait.Load()).Round(time.Millisecond))
	waitBefore := time.Duration(st.maxWait.Swap(0)) // from here on, the longest wait during the rebuilds and after

	start := time.Now()
	for i, start := range []func(context.Context) (projector.Generations, error){
		ps.orderRM.StartRebuild, ps.byCustomer.StartRebuild, ps.byStatus.StartRebuild, ps.customerRM.StartRebuild,
	} {
		g, err := start(ctx)
		require.NoError(t, err)
		require.Equal(t, 2, g.Building)
		// At once, while it surely runs: on a busy database the next
		// views' tables may take longer to create than a small view's
		// whole rebuild.
		_, err = start(ctx)
		require.ErrorIs(t, err, projector.ErrRebuildRunning, "view %d: a second rebuild is refused", i)
		if i == 0 {
			require.False(t, ps.orderRM.RequestRebuild(), "a second rebuild is refused")
			status, err := ps.orderRM.Status(ctx)
			require.NoError(t, err)
			require.Equal(t, "building", status.State)
			require.Equal(t, 2, status.Building)
		}
	}
	started := time.Since(start) // the new generations' tables created

	require.Eventually(t, func() bool {
		return ps.orderRM.ActiveGeneration() == 2 && ps.byCustomer.ActiveGeneration() == 2 &&
			ps.byStatus.ActiveGeneration() == 2 && ps.customerRM.ActiveGeneration() == 2
	}, 2*time.Minute, 100*time.Millisecond, "every view switched to generation 2")
	t.Logf("the four rebuilds switched after %s", time.Since(start).Round(time.Millisecond))
	loading.Wait()
	time.Sleep(2 * time.Second) // reads across the switch, with the caches expired
	stopReads()
	readers.Wait()

	t.Logf("%d reads, %d min_version reads, the longest wait during the rebuilds and after %s (before them %s), begun %s after the first rebuild's start (the four started, their tables created, after %s); the scans yielded %.1f s to their lagging consumers",
		st.reads.Load(), st.minVersionReads.Load(), time.Duration(st.maxWait.Load()).Round(time.Millisecond), waitBefore.Round(time.Millisecond),
		time.Unix(0, st.maxWaitAt.Load()).Sub(start).Round(time.Millisecond), started.Round(time.Millisecond),
		sumOf(t, ps.reg, "orderstream_projector_rebuild_yield_seconds_total"))
	require.Positive(t, st.reads.Load())
	require.Positive(t, st.minVersionReads.Load())
	require.Zero(t, st.failed.Load(), "failed reads: %v", st.examples)
	require.Zero(t, st.disappeared.Load(), "rows that disappeared: %v", st.examples)
	require.Zero(t, st.wentBack.Load(), "versions that went back: %v", st.examples)
	require.Zero(t, st.minVersionMissed.Load(), "min_version reads that missed: %v", st.examples)

	h.requireExact(ctx, t, 2*time.Minute)
	gensNow, err := projector.ReadGenerations(ctx, h.session)
	require.NoError(t, err)
	for _, name := range []string{"order-read-model", "orders-by-customer", "orders-by-status", "customer-read-model"} {
		require.Equal(t, 2, gensNow[name].Active, name)
		require.Contains(t, gensNow[name].Retiring, 1, "%s keeps generation 1 for the grace period", name)
	}
}

// A rebuild whose projector is stopped mid-scan (a crash) is resumed by
// another member once its heartbeat stops, and switched to; a cancelled
// rebuild's generation is dropped and the active one stays.
func TestFaultRebuildResumesAfterACrashAndCancels(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	load(ctx, t, h, 600, 200)
	h.published(ctx, t)

	cfg := projector.DefaultConfig()
	cfg.TopicPrefix = h.prefix
	cfg.Group = "projector-it-crash-" + uuid.NewString()[:8]
	cfg.GenerationRefresh, cfg.GenerationMaxStale, cfg.RebuildTakeover = 100*time.Millisecond, 200*time.Millisecond, 600*time.Millisecond
	cfg.RebuildRanges, cfg.RebuildParallelism = 32, 1
	// The first member reads event_store slowly, so that it is stopped
	// mid-scan.
	first, err := projector.New(cfg, readmodel.OrderReadModel(), h.session, slowStore{h.store}, zerolog.Nop(), nil)
	require.NoError(t, err)

	// The first member crashes once a few ranges are done.
	crashCtx, crash := context.WithCancel(ctx)
	crashed := make(chan error, 1)
	go func() { crashed <- first.Rebuild(crashCtx) }()
	rangesDone := func(gen int) int {
		var n int
		require.NoError(t, h.session.Query(`SELECT COUNT(*) FROM projection_rebuild_ranges WHERE projection_name = ? AND generation = ?`, "order-read-model", gen).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return rangesDone(2) >= 3 }, time.Minute, 5*time.Millisecond)
	crash()
	<-crashed
	before := rangesDone(2)
	require.Less(t, before, 32, "stopped mid-scan")
	g, err := first.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "building", g.State, "still building after the crash")

	// Another member takes it over and finishes it.
	second, err := projector.New(cfg, readmodel.OrderReadModel(), h.session, h.store, zerolog.Nop(), nil)
	require.NoError(t, err)
	run(ctx, t, h, second)
	require.Eventually(t, func() bool { return second.ActiveGeneration() == 2 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, 32, rangesDone(2))
	requireExactOrders(ctx, t, h)

	// Cancel: generation 3 is dropped, 2 stays active.
	g3, err := second.StartRebuild(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, g3.Building)
	_, err = second.CancelRebuild(ctx)
	require.NoError(t, err)
	_, err = second.CancelRebuild(ctx)
	require.ErrorIs(t, err, projector.ErrNoRebuild)
	tableExists := func(name string) bool {
		err := h.session.Query(`SELECT order_id FROM ` + name + ` LIMIT 1`).Exec()
		return err == nil
	}
	require.Eventually(t, func() bool { return !tableExists("order_read_model_g3") }, time.Minute, 50*time.Millisecond, "the cancelled generation is dropped")
	require.True(t, tableExists("order_read_model_g2"))
	require.Equal(t, 2, second.ActiveGeneration())
	requireExactOrders(ctx, t, h)
}

// requireExactOrders waits until order_read_model (its active generation)
// equals the fold of event_store.
func requireExactOrders(ctx context.Context, t *testing.T, h *harness) {
	t.Helper()
	var last readmodeltest.Report
	require.Eventually(t, func() bool {
		r, err := readmodeltest.CheckTables(ctx, h.session, h.store, readmodel.OrderReadModelTable)
		require.NoError(t, err)
		last = r
		return r.OK()
	}, time.Minute, 200*time.Millisecond, "order_read_model differs from event_store: %s", &last)
}

// slowStore reads an aggregate's events 20 ms late.
type slowStore struct{ *eventstore.Store }

func (s slowStore) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(20 * time.Millisecond):
	}
	return s.Store.Events(ctx, id, after, upTo, fn)
}

// sumOf sums the values of the counter or gauge name over its series in
// reg.
func sumOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
