package projector

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
)

// The CPU budget counts the process CPU time spent during the auditor's
// checks and asks for a sleep that brings it back under the budget.
func TestCPUBudgetDebt(t *testing.T) {
	var cpu time.Duration
	b := cpuBudget{budget: 0.5, now: func() time.Duration { return cpu }}
	b.reset()
	require.Zero(t, b.debt())
	used := b.measure(func() { cpu += 200 * time.Millisecond })
	require.Equal(t, 200*time.Millisecond, used)
	d := b.debt()
	require.Greater(t, d, 300*time.Millisecond, "200ms at half a core is 400ms of wall time")
	require.LessOrEqual(t, d, 400*time.Millisecond)
	b.measure(func() { cpu += 10 * time.Second })
	require.Equal(t, time.Second, b.debt(), "at most a second at a time")
}

// The pacer spaces calls at the rate, without bursts.
func TestPacerSpacesCalls(t *testing.T) {
	p := pacer{every: 20 * time.Millisecond}
	start := time.Now()
	for range 6 {
		require.NoError(t, p.wait(context.Background()))
	}
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.next = time.Now().Add(time.Hour)
	require.ErrorIs(t, p.wait(ctx), context.Canceled)
}

// A service runs one "audit" worker (behind the view's lease) unless
// projector.audit.enabled is false.
func TestAuditWorkersFollowTheConfig(t *testing.T) {
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	view := View[int]{Name: "v", AggregateType: "order",
		Fold:  func(s int, _ eventstore.Event) (int, error) { return s + 1, nil },
		Write: func(*gocql.Batch, gocql.UUID, int, bool, int, int64) error { return nil }}
	for _, enabled := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.Audit.Enabled = enabled
		p, err := New(cfg, view, nil, store, zerolog.Nop(), prometheus.NewRegistry(), WithCheckpoints(NewMemoryCheckpoints()), WithDeadLetters(deadletter.NewMemory()))
		require.NoError(t, err)
		workers, err := p.auditWorkers(nil, prometheus.NewRegistry())
		require.NoError(t, err)
		if !enabled {
			require.Empty(t, workers)
			continue
		}
		require.Len(t, workers, 1)
		require.Equal(t, "audit", workers[0].Name)
	}
	require.Equal(t, "projector-audit/order-read-model", AuditLeaseName("order-read-model"))
}
