package projector_test

// Unit tests of the projector's logic with no server: the in-memory event
// store (eventstore/memstore), checkpoints (projector.MemoryCheckpoints)
// and dead-letter store (deadletter.Memory).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/projector"
)

// tally is a view's state: the events folded, by sequence.
type tally struct {
	Seqs []int64 `json:"seqs"`
}

type unit struct {
	p      *projector.Projector[tally]
	store  *memstore.Store
	cps    *projector.MemoryCheckpoints
	dlq    *deadletter.Memory
	broken atomic.Bool // events of type "Fragile" cannot be folded while set
}

const viewName = "tally"

func newUnit(t *testing.T) *unit {
	t.Helper()
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	u := &unit{store: store, cps: projector.NewMemoryCheckpoints(), dlq: deadletter.NewMemory()}
	u.broken.Store(true)
	view := projector.View[tally]{
		Name: viewName, AggregateType: "order", Tables: []string{"tally"},
		Fold: func(s tally, e eventstore.Event) (tally, error) {
			if e.Type == "Fragile" && u.broken.Load() {
				return s, fmt.Errorf("cannot fold %d", e.Sequence)
			}
			s.Seqs = append(s.Seqs, e.Sequence)
			return s, nil
		},
		Write: func(b *gocql.Batch, id gocql.UUID, _ tally, _ bool, s tally, seq int64) error {
			b.Query(`UPDATE tally SET n = ?, version = ? WHERE id = ?`, len(s.Seqs), seq, id)
			return nil
		},
	}
	cfg := projector.DefaultConfig()
	cfg.Retry.Every = time.Millisecond
	u.p, err = projector.New(cfg, view, nil, store, zerolog.Nop(), prometheus.NewRegistry(),
		projector.WithCheckpoints(u.cps), projector.WithDeadLetters(u.dlq))
	require.NoError(t, err)
	return u
}

// commit appends events of the given types to a new order.
func (u *unit) commit(t *testing.T, types ...string) gocql.UUID {
	t.Helper()
	id := gocql.TimeUUID()
	var events []eventstore.Event
	for _, typ := range types {
		events = append(events, eventstore.Event{EventID: gocql.TimeUUID(), Type: typ, Version: 1, Data: []byte(`{}`)})
	}
	_, err := u.store.Append(context.Background(), "order", id, 0, events)
	require.NoError(t, err)
	return id
}

// handle hands the projector the record of id's event seq, as the
// consumer would.
func (u *unit) handle(t *testing.T, id gocql.UUID, seq int64) error {
	t.Helper()
	var rec projector.Record
	require.NoError(t, u.store.Events(context.Background(), id, seq-1, seq, func(e eventstore.Event) error {
		rec = projector.Record{AggregateID: id, Sequence: e.Sequence, Event: e}
		return nil
	}))
	require.Equal(t, seq, rec.Sequence)
	return u.p.Handle(context.Background(), rec)
}

// applied is the checkpoint of id: its sequence and the sequences folded.
func (u *unit) applied(t *testing.T, id gocql.UUID) (int64, []int64) {
	t.Helper()
	seq, state, _, found := u.cps.Get(viewName, id)
	if !found {
		return 0, nil
	}
	var s tally
	require.NoError(t, json.Unmarshal([]byte(state), &s))
	return seq, s.Seqs
}

// Records are applied in order; a redelivery is skipped; a record ahead of
// the checkpoint is applied after the events it skipped, read from the
// event store; rows and checkpoint are written together.
func TestHandleAppliesSkipsRedeliveriesAndFillsGaps(t *testing.T) {
	u := newUnit(t)
	id := u.commit(t, "A", "B", "C", "D")
	require.NoError(t, u.handle(t, id, 1))
	require.NoError(t, u.handle(t, id, 1), "a redelivery")
	require.NoError(t, u.handle(t, id, 4), "ahead: 2 and 3 come from the event store")
	seq, seqs := u.applied(t, id)
	require.Equal(t, int64(4), seq)
	require.Equal(t, []int64{1, 2, 3, 4}, seqs, "each once, in order")
	_, _, rows, _ := u.cps.Get(viewName, id)
	require.Equal(t, []gocql.BatchEntry{{Stmt: `UPDATE tally SET n = ?, version = ? WHERE id = ?`, Args: []any{4, int64(4), id}}}, rows)
	m := u.p.Metrics()
	require.Equal(t, 4.0, testutil.ToFloat64(m.Applied))
	require.Equal(t, 1.0, testutil.ToFloat64(m.Skipped))
	require.Equal(t, 1.0, testutil.ToFloat64(m.GapFills))
	require.Equal(t, 1, u.cps.Loads(), "the checkpoint it wrote is cached")
}

// A record of an aggregate the event store does not have is skipped, not
// dead-lettered.
func TestHandleSkipsAStranger(t *testing.T) {
	u := newUnit(t)
	stranger := gocql.TimeUUID()
	require.NoError(t, u.p.Handle(context.Background(), projector.Record{AggregateID: stranger, Sequence: 1,
		Event: eventstore.Event{AggregateID: stranger, AggregateType: "order", Sequence: 1, Type: "A"}}))
	seq, _ := u.applied(t, stranger)
	require.Zero(t, seq)
	require.Zero(t, testutil.ToFloat64(u.p.Metrics().DeadLettered))
}

// An event the view cannot fold: what precedes it is written, it is
// dead-lettered and its aggregate parked; later records of the aggregate
// are skipped, other aggregates flow on.
func TestPoisonEventParksOnlyItsAggregate(t *testing.T) {
	u := newUnit(t)
	id, other := u.commit(t, "A", "Fragile", "C"), u.commit(t, "A")
	require.NoError(t, u.handle(t, id, 3), "1, then 2 fails: parked")
	seq, seqs := u.applied(t, id)
	require.Equal(t, int64(1), seq)
	require.Equal(t, []int64{1}, seqs)
	require.Equal(t, 1.0, testutil.ToFloat64(u.p.Metrics().DeadLettered))
	page, err := u.dlq.List(context.Background(), deadletter.Filter{AggregateID: id}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, int64(2), page.Entries[0].Sequence)
	require.Equal(t, projector.Component(viewName), page.Entries[0].Component)

	require.NoError(t, u.handle(t, id, 3), "parked: skipped")
	seq, _ = u.applied(t, id)
	require.Equal(t, int64(1), seq)
	require.NoError(t, u.handle(t, other, 1))
	seq, _ = u.applied(t, other)
	require.Equal(t, int64(1), seq)
}

// A checkpoint the projector cannot read back (the code changed
// incompatibly) is permanent: the record is dead-lettered and the
// aggregate parked, not retried for ever.
func TestUnreadableCheckpointParks(t *testing.T) {
	u := newUnit(t)
	id := u.commit(t, "A", "B")
	u.cps.Put(viewName, id, 1, `{"seqs": "not a list"}`)
	require.NoError(t, u.handle(t, id, 2))
	require.Equal(t, 1.0, testutil.ToFloat64(u.p.Metrics().DeadLettered))
	parked, err := u.dlq.Parked(context.Background(), projector.Component(viewName))
	require.NoError(t, err)
	require.True(t, parked[id])
}

// The database failing is transient: Handle returns the error (the
// consumer retries) and a later attempt applies the record once.
func TestCheckpointFailureIsTransient(t *testing.T) {
	u := newUnit(t)
	id := u.commit(t, "A", "B")
	require.NoError(t, u.handle(t, id, 1))
	down := errors.New("database down")
	u.cps.Fail(down)
	require.ErrorIs(t, u.handle(t, id, 2), down)
	u.cps.Fail(nil)
	require.NoError(t, u.handle(t, id, 2))
	_, seqs := u.applied(t, id)
	require.Equal(t, []int64{1, 2}, seqs)
	require.Zero(t, testutil.ToFloat64(u.p.Metrics().DeadLettered))
}

// A retry request served by the redrive worker: while the cause remains it
// fails and counts one more failure; once fixed, it applies the parked
// events from the checkpoint through the head, once and in order, and
// unparks the aggregate.
func TestRetryRequestReappliesAndUnparks(t *testing.T) {
	u := newUnit(t)
	id := u.commit(t, "A", "Fragile", "C")
	require.NoError(t, u.handle(t, id, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := u.dlq.List(ctx, deadletter.Filter{AggregateID: id}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	head := page.Entries[0]

	worker := u.p.RedriveWorker()
	require.Equal(t, "redrive", worker.Name)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- worker.Run(wctx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()
	retry := func() deadletter.Result {
		req, _, err := u.dlq.Submit(ctx, deadletter.Request{Component: head.Component, AggregateID: id, DLQID: head.ID, Action: deadletter.ActionRetry, RequestedBy: "test"})
		require.NoError(t, err)
		res, found, err := u.dlq.AwaitResult(ctx, req.ID, time.Millisecond)
		require.NoError(t, err)
		require.True(t, found)
		return res
	}
	res := retry()
	require.Equal(t, deadletter.StatusFailed, res.Status, res.Detail)
	again, _, err := u.dlq.Get(ctx, head.ID)
	require.NoError(t, err)
	require.Equal(t, 2, again.FailureCount)

	u.broken.Store(false)
	res = retry()
	require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
	require.Equal(t, int64(3), res.Progress)
	_, seqs := u.applied(t, id)
	require.Equal(t, []int64{1, 2, 3}, seqs)
	parked, err := u.dlq.Parked(ctx, projector.Component(viewName))
	require.NoError(t, err)
	require.False(t, parked[id])
	require.NoError(t, u.handle(t, id, 3), "a redelivery after the re-drive changes nothing")
	_, seqs = u.applied(t, id)
	require.Equal(t, []int64{1, 2, 3}, seqs)
}

// TestSkipReasonsExistFromTheStart: every reason of records_skipped_total
// is exported at 0 before the first skip, so that the dashboards' panel
// has data on a projector that never skipped a record.
func TestSkipReasonsExistFromTheStart(t *testing.T) {
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	view := projector.View[tally]{Name: viewName, AggregateType: "order", Tables: []string{"tally"},
		Fold:  func(s tally, _ eventstore.Event) (tally, error) { return s, nil },
		Write: func(*gocql.Batch, gocql.UUID, tally, bool, tally, int64) error { return nil }}
	_, err = projector.New(projector.DefaultConfig(), view, nil, store, zerolog.Nop(), reg,
		projector.WithCheckpoints(projector.NewMemoryCheckpoints()), projector.WithDeadLetters(deadletter.NewMemory()))
	require.NoError(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	var reasons []string
	for _, f := range families {
		if f.GetName() != "orderstream_projector_records_skipped_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					reasons = append(reasons, l.GetValue())
				}
			}
		}
	}
	require.ElementsMatch(t, []string{"applied", "parked", "unknown", "dlq_skip"}, reasons)
}
