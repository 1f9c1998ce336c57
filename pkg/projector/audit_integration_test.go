//go:build fault

package projector_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// newAuditor builds the auditor of a running projector over the harness's
// keyspace, as the service does (View.Audit.Rows), fast enough for a test.
func newAuditor[S any](t *testing.T, h *harness, p *projector.Projector[S], view projector.View[S], reg prometheus.Registerer, tune ...func(*projector.AuditConfig)) *projector.Auditor[S] {
	t.Helper()
	cfg := projector.DefaultAuditConfig()
	cfg.Rate, cfg.CPUBudget, cfg.Ranges, cfg.Grace = 5000, 64, 8, 3*time.Second // the test's process runs the whole stack: no CPU budget
	for _, f := range tune {
		f(&cfg)
	}
	require.NotNil(t, view.Audit, "the view of %s is audited", view.Name)
	a, err := projector.NewAuditor(p, cfg, view.Audit.Rows(h.session, p.LiveTable), reg)
	require.NoError(t, err)
	return a
}

// exec runs one CQL statement of a hand-made corruption.
func exec(t *testing.T, h *harness, stmt string, args ...any) {
	t.Helper()
	require.NoError(t, h.session.Query(stmt, args...).Exec(), stmt)
}

// otherStatus is a status an order is not in.
func otherStatus(s string) string {
	if s == "CREATED" {
		return "CANCELLED"
	}
	return "CREATED"
}

// Every view is corrupted in every way — rows deleted, versions set back,
// columns edited by hand, rows inserted that no event calls for (an order
// under a status it left or under the wrong customer, an aggregate that
// has no events), a write lost with its checkpoint — while a live load
// runs; one pass of each view's auditor finds it all, by kind, and
// afterwards every view equals the fold of event_store.
func TestFaultAuditorRepairsEveryViewUnderLoad(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	ps := runAll(ctx, t, h)
	start := time.Now()
	load(ctx, t, h, 600, 80)
	h.requireExact(ctx, t, time.Minute)
	t.Logf("loaded and projected in %s", time.Since(start))

	var orders, customers []gocql.UUID
	require.NoError(t, h.store.Heads(ctx, func(hd eventstore.Head) error {
		switch hd.AggregateType {
		case order.AggregateType:
			orders = append(orders, hd.AggregateID)
		case customer.AggregateType:
			customers = append(customers, hd.AggregateID)
		}
		return nil
	}))
	require.GreaterOrEqual(t, len(orders), 12)
	require.GreaterOrEqual(t, len(customers), 4)
	rows := make([]readmodel.OrderRow, len(orders))
	for i, id := range orders[:12] {
		r, ok, err := readmodel.ReadOrder(ctx, h.session, id)
		require.NoError(t, err)
		require.True(t, ok)
		rows[i] = r
	}

	// Live load on aggregates of their own while the views are corrupted
	// and audited.
	live, liveCtx := errgroup.WithContext(ctx)
	live.Go(func() error {
		_, err := loadgen.Run(liveCtx, loadgen.Config{Commands: 500, Aggregates: 50, Workers: 4, Seed: rand.Uint64()}, h.orders, h.customers)
		return err
	})

	// order_read_model.
	exec(t, h, `DELETE FROM order_read_model WHERE order_id = ?`, orders[0])
	exec(t, h, `UPDATE order_read_model SET version = 0 WHERE order_id = ?`, orders[1])
	exec(t, h, `UPDATE order_read_model SET status = ? WHERE order_id = ?`, otherStatus(rows[2].Status), orders[2])
	exec(t, h, `INSERT INTO order_read_model (order_id, customer_id, status, version) VALUES (?, ?, 'CREATED', 1)`, gocql.TimeUUID(), gocql.TimeUUID())
	// A write lost with its checkpoint.
	exec(t, h, `DELETE FROM order_read_model WHERE order_id = ?`, orders[3])
	exec(t, h, `DELETE FROM projection_checkpoints WHERE projection_name = ? AND aggregate_id = ?`, ps.orderRM.Name(), orders[3])

	// orders_by_customer.
	r := rows[4]
	exec(t, h, `DELETE FROM orders_by_customer WHERE customer_id = ? AND created_at = ? AND order_id = ?`, r.CustomerID, r.CreatedAt, r.OrderID)
	r = rows[5]
	exec(t, h, `UPDATE orders_by_customer SET version = 0 WHERE customer_id = ? AND created_at = ? AND order_id = ?`, r.CustomerID, r.CreatedAt, r.OrderID)
	r = rows[6]
	exec(t, h, `UPDATE orders_by_customer SET status = ? WHERE customer_id = ? AND created_at = ? AND order_id = ?`, otherStatus(r.Status), r.CustomerID, r.CreatedAt, r.OrderID)
	r = rows[7]
	exec(t, h, `INSERT INTO orders_by_customer (customer_id, created_at, order_id, status, version) VALUES (?, ?, ?, ?, ?)`,
		gocql.TimeUUID(), r.CreatedAt, r.OrderID, r.Status, r.Version) // under the wrong customer

	// orders_by_status.
	r = rows[8] // a status changed by hand: the row moved
	exec(t, h, `DELETE FROM orders_by_status WHERE status = ? AND created_at = ? AND order_id = ?`, r.Status, r.CreatedAt, r.OrderID)
	exec(t, h, `INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES (?, ?, ?, ?, ?)`,
		otherStatus(r.Status), r.CreatedAt, r.OrderID, r.CustomerID, r.Version)
	r = rows[9] // still listed under a status it left
	exec(t, h, `INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES (?, ?, ?, ?, ?)`,
		otherStatus(r.Status), r.CreatedAt, r.OrderID, r.CustomerID, r.Version)
	r = rows[10]
	exec(t, h, `UPDATE orders_by_status SET version = 0 WHERE status = ? AND created_at = ? AND order_id = ?`, r.Status, r.CreatedAt, r.OrderID)
	exec(t, h, `INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES ('CREATED', ?, ?, ?, 1)`,
		time.Now().UTC().Truncate(time.Millisecond), gocql.TimeUUID(), gocql.TimeUUID()) // an order with no events

	// customer_read_model.
	exec(t, h, `DELETE FROM customer_read_model WHERE customer_id = ?`, customers[0])
	exec(t, h, `UPDATE customer_read_model SET version = 0 WHERE customer_id = ?`, customers[1])
	exec(t, h, `UPDATE customer_read_model SET tier = 'edited by hand' WHERE customer_id = ?`, customers[2])
	exec(t, h, `INSERT INTO customer_read_model (customer_id, name, version) VALUES (?, 'nobody', 1)`, gocql.TimeUUID())

	// One pass of each auditor, under the load.
	reg := prometheus.NewRegistry()
	orderRM := newAuditor(t, h, ps.orderRM, readmodel.OrderReadModel(), reg)
	byCustomer := newAuditor(t, h, ps.byCustomer, readmodel.OrdersByCustomer(), reg)
	byStatus := newAuditor(t, h, ps.byStatus, readmodel.OrdersByStatus(), reg)
	customerRM := newAuditor(t, h, ps.customerRM, readmodel.CustomerReadModel(), reg)
	results := make([]projector.PassResult, 4)
	var passes errgroup.Group
	passes.Go(func() (err error) { results[0], err = orderRM.Pass(ctx); return err })
	passes.Go(func() (err error) { results[1], err = byCustomer.Pass(ctx); return err })
	passes.Go(func() (err error) { results[2], err = byStatus.Pass(ctx); return err })
	passes.Go(func() (err error) { results[3], err = customerRM.Pass(ctx); return err })
	start = time.Now()
	require.NoError(t, passes.Wait())
	t.Logf("one pass of each auditor took %s: %+v", time.Since(start), results)
	require.NoError(t, live.Wait())

	// What each found, by kind (at least: the live load may add in-flight
	// aggregates, never counted as drift unless they stay behind).
	want := map[string]map[string]float64{
		ps.orderRM.Name():    {projector.DriftMissingRow: 2, projector.DriftStaleVersion: 1, projector.DriftWrongContent: 1, projector.DriftStrayRow: 1},
		ps.byCustomer.Name(): {projector.DriftMissingRow: 1, projector.DriftStaleVersion: 1, projector.DriftWrongContent: 1, projector.DriftStrayRow: 1},
		ps.byStatus.Name():   {projector.DriftMissingRow: 1, projector.DriftStaleVersion: 1, projector.DriftStrayRow: 3},
		ps.customerRM.Name(): {projector.DriftMissingRow: 1, projector.DriftStaleVersion: 1, projector.DriftWrongContent: 1, projector.DriftStrayRow: 1},
	}
	for view, kinds := range want {
		for kind, n := range kinds {
			require.GreaterOrEqual(t, metricValue(t, reg, "drift_total", "projection", view, "kind", kind), n, "%s %s", view, kind)
		}
		require.Equal(t, 1.0, metricValue(t, reg, "passes_total", "projection", view))
		require.Positive(t, metricValue(t, reg, "aggregates_checked_total", "projection", view))
		require.Positive(t, metricValue(t, reg, "repaired_total", "projection", view))
		require.Zero(t, metricValue(t, reg, "failed_total", "projection", view))
	}
	require.Positive(t, metricValue(t, reg, "rows_checked_total", "projection", ps.byStatus.Name()))

	// No further pass: what the live load left is applied by the
	// projectors, what was corrupted was repaired by that one pass.
	start = time.Now()
	h.published(ctx, t)
	h.requireExact(ctx, t, 30*time.Second)
	t.Logf("exact %s after the passes", time.Since(start))
}

// An auditor whose view consumes nothing rests after a pass, against the
// real stack: no further pass while the projector applies nothing; the
// commands of a load wake it (the projector applies their records), and
// once the view is idle again it rests again.
func TestFaultAuditorRestsWhileItsViewIsIdle(t *testing.T) {
	t.Parallel() // a private keyspace, topics and groups of its own
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h := newHarness(ctx, t)
	h.runRelay(ctx, t)
	ps := runAll(ctx, t, h)
	load(ctx, t, h, 100, 20)
	h.published(ctx, t)
	h.requireExact(ctx, t, time.Minute)

	const pause = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	a := newAuditor(t, h, ps.orderRM, readmodel.OrderReadModel(), reg, func(c *projector.AuditConfig) { c.Pause, c.IdlePause = pause, time.Hour })
	metric := func(name string, labels ...string) float64 { return metricValue(t, reg, name, labels...) }
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Worker().Run(wctx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
		require.Zero(t, metric("resting"))
	}()

	require.Eventually(t, func() bool { return metric("passes_total") == 1 && metric("resting") == 1 }, time.Minute, 10*time.Millisecond,
		"a pass over an idle view, then rest")
	require.Positive(t, metric("aggregates_checked_total"))
	checked := metric("aggregates_checked_total")
	require.Never(t, func() bool { return metric("passes_total") > 1 }, 5*pause, 20*time.Millisecond, "resting while the view consumes nothing")
	require.Equal(t, checked, metric("aggregates_checked_total"), "nothing read while resting")

	load(ctx, t, h, 64, 16)
	require.Eventually(t, func() bool { return metric("passes_total") >= 2 }, time.Minute, 10*time.Millisecond, "woken by the records applied")
	require.GreaterOrEqual(t, metric("wakes_total", "reason", projector.WakeApplied), 1.0)
	h.published(ctx, t)
	h.requireExact(ctx, t, time.Minute)
	require.Eventually(t, func() bool { return metric("resting") == 1 }, time.Minute, 10*time.Millisecond, "resting again once the view is idle")
	require.Zero(t, metric("wakes_total", "reason", projector.WakeIdlePause))
	require.Zero(t, metric("failed_total"))
}
