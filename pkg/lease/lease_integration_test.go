package lease_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/lease"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

type contender struct {
	l       *lease.Lease
	reg     *prometheus.Registry
	session interface{ Close() }
	working atomic.Bool
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, name string, cfg lease.Config, active *atomic.Int32, overlap *atomic.Bool) *contender {
	t.Helper()
	session := stacktest.Session(t)
	reg := prometheus.NewRegistry()
	l, err := lease.New(session, name, "test", cfg, zerolog.Nop(), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	c := &contender{l: l, reg: reg, session: session, cancel: cancel, done: make(chan error, 1)}
	go func() {
		c.done <- l.Run(ctx, func(ctx context.Context) error {
			if active.Add(1) > 1 {
				overlap.Store(true)
			}
			c.working.Store(true)
			<-ctx.Done()
			c.working.Store(false)
			active.Add(-1)
			return ctx.Err()
		})
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// metric is the value of one of the contender's lease metrics.
func (c *contender) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := c.reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// Two contenders: exactly one works. When the worker dies without
// releasing (its renewals stop), the other takes over within the TTL;
// when it stops cleanly it releases and the other takes over at once.
func TestOneActiveAndTakeover(t *testing.T) {
	cfg := lease.Config{TTL: 3 * time.Second, RenewEvery: 500 * time.Millisecond}
	name := stacktest.UniqueName("lease-")
	var active atomic.Int32
	var overlap atomic.Bool

	a := start(t, name, cfg, &active, &overlap)
	require.Eventually(t, a.working.Load, 10*time.Second, 20*time.Millisecond)
	b := start(t, name, cfg, &active, &overlap)
	require.Never(t, b.working.Load, 2*time.Second, 50*time.Millisecond, "the standby stays idle while the lease is renewed")

	// A clean stop releases the lease: b takes over within one renewal.
	stopped := time.Now()
	a.cancel()
	require.NoError(t, <-a.done)
	a.done <- nil // for Cleanup
	require.Eventually(t, b.working.Load, cfg.RenewEvery+2*time.Second, 20*time.Millisecond)
	t.Logf("takeover after a clean stop: %s", time.Since(stopped))
	require.Zero(t, a.metric(t, "orderstream_lease_takeovers_total"), "a took a free lease")
	require.Equal(t, 1.0, b.metric(t, "orderstream_lease_takeovers_total"))
	require.Equal(t, 1.0, b.metric(t, "orderstream_lease_leader"))
	require.Zero(t, a.metric(t, "orderstream_lease_leader"))

	// A holder cut off from the database (no renewals, no release): it
	// stops working before its lease expires, and c takes over within the
	// TTL plus one retry.
	c := start(t, name, cfg, &active, &overlap)
	require.Never(t, c.working.Load, time.Second, 50*time.Millisecond)
	vanished := time.Now()
	b.session.Close()
	require.Eventually(t, c.working.Load, cfg.TTL+2*cfg.RenewEvery+time.Second, 20*time.Millisecond)
	t.Logf("takeover after the holder vanished: %s", time.Since(vanished))
	require.Eventually(t, func() bool { return !b.working.Load() }, time.Second, 10*time.Millisecond, "the old holder stopped when its renewal failed")
	require.Equal(t, 1.0, c.metric(t, "orderstream_lease_takeovers_total"))
	require.Equal(t, 1.0, b.metric(t, "orderstream_lease_lost_total"))
	require.Zero(t, b.metric(t, "orderstream_lease_leader"))
	require.False(t, overlap.Load(), "two contenders never worked at once")
}

// The row keeps the moment its holder took it across renewals: the
// renewing UPDATE rewrites every cell with the TTL, acquired_at included,
// so it does not turn null when the INSERT's TTL runs out.
func TestAcquiredAtSurvivesRenewals(t *testing.T) {
	cfg := lease.Config{TTL: 2 * time.Second, RenewEvery: 500 * time.Millisecond}
	name := stacktest.UniqueName("lease-")
	var active atomic.Int32
	var overlap atomic.Bool
	a := start(t, name, cfg, &active, &overlap)
	require.Eventually(t, a.working.Load, 10*time.Second, 20*time.Millisecond)

	session := stacktest.Session(t)
	type row struct {
		owner             string
		acquired, renewed time.Time
	}
	read := func() (r row, err error) {
		err = session.Query(`SELECT owner, acquired_at, renewed_at FROM relay_leases WHERE source = ?`, name).
			Scan(&r.owner, &r.acquired, &r.renewed)
		return r, err
	}
	first, err := read()
	require.NoError(t, err)
	require.Equal(t, a.l.Owner(), first.owner)
	require.False(t, first.acquired.IsZero(), "acquired_at is written when the lease is taken")
	// Watch the row for twice the TTL: the INSERT's cells have expired by
	// then, and only the renewals keep the row alive.
	var last row
	require.Never(t, func() bool {
		r, err := read()
		if err != nil || r.owner != first.owner || !r.acquired.Equal(first.acquired) {
			t.Logf("lease row: %+v (err %v), taken as %+v", r, err, first)
			return true
		}
		last = r
		return false
	}, 2*cfg.TTL+cfg.RenewEvery, 100*time.Millisecond, "acquired_at and owner stay as they were taken")
	require.True(t, last.renewed.After(first.acquired.Add(cfg.TTL)), "renewed_at %v moved on past the first TTL (taken at %v)", last.renewed, first.acquired)
}
