// Package deadlettertest holds the contract every implementation of the
// dead-letter queue meets: deadletter.Store against Cassandra (in the
// package's integration test) and deadletter.Memory (in its unit test) run
// the same Suite, so that a unit test on the twin shows what the real
// queue does.
package deadlettertest

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Store is the whole of a dead-letter queue, as deadletter.Store and
// deadletter.Memory offer it.
type Store interface {
	deadletter.RequestStore
	Park(ctx context.Context, component string, e eventstore.Event, cause error) (gocql.UUID, error)
	Raw(ctx context.Context, component string, raw any, cause error) error
	Refail(ctx context.Context, id gocql.UUID, cause error) (bool, error)
	Delete(ctx context.Context, e deadletter.Summary) error
	Resolve(ctx context.Context, e deadletter.Entry) error
	IsHead(ctx context.Context, e deadletter.Entry) (bool, error)
	ParkedRows(ctx context.Context, component string) (map[gocql.UUID]deadletter.ParkedAggregate, error)
	Parked(ctx context.Context, component string) (map[gocql.UUID]bool, error)
	List(ctx context.Context, f deadletter.Filter, after gocql.UUID, limit int) (deadletter.ListPage, error)
	Summaries(ctx context.Context, f deadletter.Filter, after gocql.UUID, n int) ([]deadletter.Summary, error)
	Components(ctx context.Context) ([]string, error)
	ReadStats(ctx context.Context) (deadletter.Stats, error)
	Submit(ctx context.Context, r deadletter.Request) (deadletter.Request, bool, error)
	PendingFor(ctx context.Context, component string, aggregateID gocql.UUID) (deadletter.Request, bool, error)
	AwaitResult(ctx context.Context, id gocql.UUID, every time.Duration) (deadletter.Result, bool, error)
	Settle(ctx context.Context, e deadletter.Entry, o deadletter.Outcome) (deadletter.Result, error)
}

var (
	_ Store = (*deadletter.Store)(nil)
	_ Store = (*deadletter.Memory)(nil)
)

// Suite runs the contract against the empty queues open returns, one per
// subtest.
func Suite(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Store)
	}{
		{"ParkTwiceIsOneDeadLetter", parkTwiceIsOneDeadLetter},
		{"ListFiltersAndPages", listFiltersAndPages},
		{"SubmitKeepsOneRequestPerAggregate", submitKeepsOneRequestPerAggregate},
		{"RetrierCarriesOutEachRequestOnce", retrierCarriesOutEachRequestOnce},
		{"PollPendingCountsWhatItFound", pollPendingCountsWhatItFound},
		{"ClaimAndRelease", claimAndRelease},
		{"Settle", settle},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// Event is an event of aggregate id for Park.
func Event(id gocql.UUID, seq int64, typ string) eventstore.Event {
	return eventstore.Event{AggregateID: id, AggregateType: "order", Sequence: seq, EventID: gocql.UUID(uuid.New()), Type: typ, Data: []byte(`{"n":1}`)}
}

// The same event failing again (a retry, a re-read after a restart) counts
// one more failure of its dead letter instead of adding another.
func parkTwiceIsOneDeadLetter(t *testing.T, s Store) {
	ctx := context.Background()
	agg := gocql.UUID(uuid.New())
	e := Event(agg, 3, "OrderConfirmed")
	first, err := s.Park(ctx, "projector/x", e, errors.New("boom 1"))
	require.NoError(t, err)
	again, err := s.Park(ctx, "projector/x", e, errors.New("boom 2"))
	require.NoError(t, err)
	require.Equal(t, first, again)
	// Another component's failure of the same event is its own.
	other, err := s.Park(ctx, "relay", e, errors.New("boom"))
	require.NoError(t, err)
	require.NotEqual(t, first, other)

	got, found, err := s.Get(ctx, first)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 2, got.FailureCount)
	require.Equal(t, "boom 2", got.Error)
	require.Len(t, got.ErrorHistory, 2)
	require.Contains(t, got.ErrorHistory[0], "boom 1")
	require.Contains(t, got.ErrorHistory[1], "boom 2")
	require.Equal(t, int64(3), got.Sequence)
	require.Equal(t, "OrderConfirmed", got.EventType)
	require.Equal(t, e.EventID, got.EventID)
	require.Equal(t, `{"n":1}`, got.Payload)
	require.True(t, got.ParksAggregate)
	require.True(t, got.LastFailedAt.After(got.FirstFailedAt) || got.LastFailedAt.Equal(got.FirstFailedAt))

	p, parked, err := s.ReadParked(ctx, "projector/x", agg)
	require.NoError(t, err)
	require.True(t, parked)
	require.Equal(t, first, p.DLQID)
	require.Equal(t, int64(3), p.Sequence)
	require.Equal(t, "boom 2", p.Reason)
	head, err := s.IsHead(ctx, got)
	require.NoError(t, err)
	require.True(t, head)
	ids, err := s.Parked(ctx, "projector/x")
	require.NoError(t, err)
	require.Equal(t, map[gocql.UUID]bool{agg: true}, ids)
	rows, err := s.ParkedRows(ctx, "relay")
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.False(t, rows[agg].Heads(got.Summary()), "a row of relay does not head projector/x's dead letter")

	require.NoError(t, s.Delete(ctx, got.Summary()))
	refailed, err := s.Refail(ctx, first, errors.New("late"))
	require.NoError(t, err)
	require.False(t, refailed, "a purged dead letter is not brought back")
	_, found, err = s.Get(ctx, first)
	require.NoError(t, err)
	require.False(t, found)
	// Delete unparks nothing: that goes through the component.
	_, parked, err = s.ReadParked(ctx, "projector/x", agg)
	require.NoError(t, err)
	require.True(t, parked)
	page, err := s.List(ctx, deadletter.Filter{AggregateID: agg}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, other, page.Entries[0].ID)
}

func listFiltersAndPages(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := gocql.UUID(uuid.New()), gocql.UUID(uuid.New())
	type spec struct {
		comp string
		agg  gocql.UUID
		seq  int64
		typ  string
	}
	specs := []spec{
		{"relay", a, 2, "OrderConfirmed"}, {"projector/x", a, 3, "OrderShipped"}, {"projector/y", b, 1, "OrderCreated"},
		{"projector/x", b, 5, "OrderShipped"}, {"projector/y", a, 4, "OrderShipped"},
	}
	var all []gocql.UUID
	for _, sp := range specs {
		id, err := s.Park(ctx, sp.comp, Event(sp.agg, sp.seq, sp.typ), errors.New("bad"))
		require.NoError(t, err)
		all = append(all, id)
	}
	mid := time.Now()
	require.NoError(t, s.Raw(ctx, "relay/cdc", map[string]any{"row": 1}, errors.New("unreadable")))

	ids := func(f deadletter.Filter) []gocql.UUID {
		page, err := s.List(ctx, f, gocql.UUID{}, 100)
		require.NoError(t, err)
		require.Equal(t, gocql.UUID{}, page.Next)
		out := []gocql.UUID{}
		for _, e := range page.Entries {
			out = append(out, e.ID)
		}
		return out
	}
	rev := func(in ...gocql.UUID) []gocql.UUID {
		out := append([]gocql.UUID{}, in...)
		sort.Slice(out, func(i, j int) bool { return deadletter.CompareTimeUUID(out[i], out[j]) > 0 })
		return out
	}
	require.Len(t, ids(deadletter.Filter{}), 6)
	require.Equal(t, rev(all[1], all[3]), ids(deadletter.Filter{Component: "projector/x"}))
	require.Equal(t, rev(all[1], all[3], all[4]), ids(deadletter.Filter{EventType: "OrderShipped"}))
	require.Equal(t, rev(all[1], all[4]), ids(deadletter.Filter{EventType: "OrderShipped", AggregateID: a}))
	require.Equal(t, rev(all[0], all[1], all[4]), ids(deadletter.Filter{AggregateID: a}))
	require.Equal(t, rev(all[4]), ids(deadletter.Filter{AggregateID: a, Component: "projector/y"}))
	require.Len(t, ids(deadletter.Filter{Since: mid}), 1, "only the raw one")
	require.Len(t, ids(deadletter.Filter{Until: mid}), 5)
	require.Empty(t, ids(deadletter.Filter{Component: "nobody"}))
	components, err := s.Components(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"projector/x", "projector/y", "relay", "relay/cdc"}, components)

	// Pages of two over the merged component partitions: every entry once,
	// newest first.
	var paged []gocql.UUID
	after := gocql.UUID{}
	for range 10 {
		page, err := s.List(ctx, deadletter.Filter{}, after, 2)
		require.NoError(t, err)
		for _, e := range page.Entries {
			paged = append(paged, e.ID)
		}
		if page.Next == (gocql.UUID{}) {
			break
		}
		after = page.Next
	}
	require.Equal(t, ids(deadletter.Filter{}), paged)

	// Paging within a time range: the tighter upper bound wins.
	page, err := s.List(ctx, deadletter.Filter{Until: mid}, gocql.UUID{}, 3)
	require.NoError(t, err)
	require.Len(t, page.Entries, 3)
	page, err = s.List(ctx, deadletter.Filter{Until: mid}, page.Next, 3)
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	sums, err := s.Summaries(ctx, deadletter.Filter{Component: "relay/cdc"}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, sums, 1)
	require.False(t, sums[0].ParksAggregate)
	require.Equal(t, gocql.UUID{}, sums[0].AggregateID)

	st, err := s.ReadStats(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, st.Total)
	require.Equal(t, map[string]int{"relay": 1, "projector/x": 2, "projector/y": 2, "relay/cdc": 1}, st.ByComponent)
	require.Equal(t, map[string]int{"OrderConfirmed": 1, "OrderShipped": 3, "OrderCreated": 1}, st.ByEventType)
	require.Equal(t, map[string]int{"relay": 1, "projector/x": 2, "projector/y": 2}, st.Parked)
	require.Equal(t, all[0], st.Oldest.ID)
	require.Contains(t, st.ByComponentAndType, deadletter.Count{Component: "projector/x", EventType: "OrderShipped", Count: 2})
	require.Contains(t, st.ByComponentAndType, deadletter.Count{Component: "relay/cdc", EventType: "", Count: 1})
}

// Two retries of one aggregate at once are one request; the second caller
// is handed the first one's.
func submitKeepsOneRequestPerAggregate(t *testing.T, s Store) {
	ctx := context.Background()
	agg := gocql.UUID(uuid.New())
	var (
		created atomic.Int32
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[gocql.UUID]bool{}
	)
	for range 8 {
		wg.Go(func() {
			r, ok, err := s.Submit(ctx, deadletter.Request{Component: "relay", AggregateID: agg, DLQID: gocql.TimeUUID(), Action: deadletter.ActionRetry, RequestedBy: "t"})
			require.NoError(t, err)
			if ok {
				created.Add(1)
			}
			mu.Lock()
			seen[r.ID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), created.Load())
	require.Len(t, seen, 1)
	pending, err := s.Pending(ctx, "relay")
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, "t", pending[0].RequestedBy)
	require.Equal(t, deadletter.ActionRetry, pending[0].Action)
	one, found, err := s.PendingFor(ctx, "relay", agg)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, pending[0].ID, one.ID)
	st, err := s.ReadStats(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"relay": 1}, st.PendingRetries)
}

// Two replicas of a component polling the same requests carry each out
// once; the outcome is written and the request deleted.
func retrierCarriesOutEachRequestOnce(t *testing.T, s Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const component = "projector/x"
	var calls sync.Map
	var total atomic.Int32
	redrive := func(ctx context.Context, req deadletter.Request, e deadletter.Entry) (deadletter.Result, error) {
		if _, dup := calls.LoadOrStore(req.ID, true); dup {
			t.Errorf("request %s carried out twice", req.ID)
		}
		total.Add(1)
		return s.Settle(ctx, e, deadletter.Outcome{Progress: e.Sequence, Head: e.Sequence, Applied: 1})
	}
	cfg := deadletter.RetryConfig{Every: 20 * time.Millisecond, ClaimFor: 10 * time.Second}
	reg := prometheus.NewRegistry()
	r1, err := deadletter.NewRetrierOn(cfg, s, component, redrive, zerolog.Nop(), reg)
	require.NoError(t, err)
	reg2 := prometheus.NewRegistry()
	r2, err := deadletter.NewRetrierOn(cfg, s, component, redrive, zerolog.Nop(), reg2)
	require.NoError(t, err)

	var reqs []deadletter.Request
	for i := range 6 {
		agg := gocql.UUID(uuid.New())
		id, err := s.Park(ctx, component, Event(agg, int64(i+1), "OrderShipped"), errors.New("bad"))
		require.NoError(t, err)
		req, created, err := s.Submit(ctx, deadletter.Request{Component: component, AggregateID: agg, DLQID: id, Action: deadletter.ActionRetry, RequestedBy: "t"})
		require.NoError(t, err)
		require.True(t, created)
		reqs = append(reqs, req)
	}
	// Both poll until every request is done (a claim lost to a timeout
	// of the database frees itself after ClaimFor).
	var wg sync.WaitGroup
	for _, r := range []*deadletter.Retrier{r1, r2} {
		wg.Go(func() {
			for ctx.Err() == nil {
				if pending, err := s.Pending(ctx, component); err == nil && len(pending) == 0 {
					return
				}
				_ = r.Poll(ctx)
				time.Sleep(cfg.Every)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(6), total.Load())
	for _, req := range reqs {
		res, found, err := s.ReadResult(ctx, req.ID)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
		require.Equal(t, req.DLQID, res.DLQID)
		require.Equal(t, "t", res.RequestedBy)
		_, parked, err := s.ReadParked(ctx, component, req.AggregateID)
		require.NoError(t, err)
		require.False(t, parked)
	}
	pending, err := s.Pending(ctx, component)
	require.NoError(t, err)
	require.Empty(t, pending)
	st, err := s.ReadStats(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, st.Total)

	// A request whose dead letter is gone is answered gone.
	req, _, err := s.Submit(ctx, deadletter.Request{Component: component, AggregateID: gocql.UUID(uuid.New()), DLQID: gocql.TimeUUID(), Action: deadletter.ActionRetry})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_ = r1.Poll(ctx)
		_, found, err := s.ReadResult(ctx, req.ID)
		return err == nil && found
	}, 30*time.Second, cfg.Every)
	res, found, err := s.AwaitResult(ctx, req.ID, 10*time.Millisecond)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, deadletter.StatusGone, res.Status)
	require.Equal(t, 6.0, Redrives(t, reg, "succeeded")+Redrives(t, reg2, "succeeded"))
	require.Equal(t, 1.0, Redrives(t, reg, "gone"))

	// Awaiting an outcome that never comes ends with the context, found
	// false and no error.
	wctx, wcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer wcancel()
	_, found, err = s.AwaitResult(wctx, gocql.TimeUUID(), 10*time.Millisecond)
	require.NoError(t, err)
	require.False(t, found)
}

// PollPending says how many requests a poll found pending, those another
// replica holds included (its caller polls fast while there are some), and
// 0 once there are none.
func pollPendingCountsWhatItFound(t *testing.T, s Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const component = "projector/poll"
	var served atomic.Int32
	redrive := func(ctx context.Context, req deadletter.Request, e deadletter.Entry) (deadletter.Result, error) {
		served.Add(1)
		return s.Settle(ctx, e, deadletter.Outcome{Progress: e.Sequence, Head: e.Sequence, Applied: 1})
	}
	r, err := deadletter.NewRetrierOn(deadletter.DefaultRetryConfig(), s, component, redrive, zerolog.Nop(), nil)
	require.NoError(t, err)
	n, err := r.PollPending(ctx)
	require.NoError(t, err)
	require.Zero(t, n)

	agg := gocql.UUID(uuid.New())
	id, err := s.Park(ctx, component, Event(agg, 1, "OrderShipped"), errors.New("bad"))
	require.NoError(t, err)
	req, created, err := s.Submit(ctx, deadletter.Request{Component: component, AggregateID: agg, DLQID: id, Action: deadletter.ActionRetry, RequestedBy: "t"})
	require.NoError(t, err)
	require.True(t, created)
	taken, err := s.Claim(ctx, req, "another replica", time.Minute)
	require.NoError(t, err)
	require.True(t, taken)
	n, err = r.PollPending(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "held by another replica: still a request")
	require.Zero(t, served.Load())

	require.NoError(t, s.Release(ctx, req, "another replica"))
	n, err = r.PollPending(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, int32(1), served.Load())
	n, err = r.PollPending(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "done and deleted")
	require.NoError(t, r.Poll(ctx), "Poll is PollPending without the count")
}

// A request is taken by one owner at a time; its owner can free it.
func claimAndRelease(t *testing.T, s Store) {
	ctx := context.Background()
	req, created, err := s.Submit(ctx, deadletter.Request{Component: "relay", AggregateID: gocql.UUID(uuid.New()), DLQID: gocql.TimeUUID(), Action: deadletter.ActionSkip, RequestedBy: "t"})
	require.NoError(t, err)
	require.True(t, created)
	taken, err := s.Claim(ctx, req, "a", time.Minute)
	require.NoError(t, err)
	require.True(t, taken)
	taken, err = s.Claim(ctx, req, "b", time.Minute)
	require.NoError(t, err)
	require.False(t, taken, "taken by a already")
	cur, _, err := s.PendingFor(ctx, "relay", req.AggregateID)
	require.NoError(t, err)
	require.Equal(t, "a", cur.ClaimedBy)
	require.Equal(t, deadletter.ActionSkip, cur.Action)

	require.NoError(t, s.Release(ctx, req, "b"), "not b's: nothing happens")
	cur, _, err = s.PendingFor(ctx, "relay", req.AggregateID)
	require.NoError(t, err)
	require.Equal(t, "a", cur.ClaimedBy)
	require.NoError(t, s.Release(ctx, req, "a"))
	cur, _, err = s.PendingFor(ctx, "relay", req.AggregateID)
	require.NoError(t, err)
	require.Empty(t, cur.ClaimedBy)
	taken, err = s.Claim(ctx, req, "b", time.Minute)
	require.NoError(t, err)
	require.True(t, taken)

	// Deleting another request of the aggregate leaves this one.
	require.NoError(t, s.DeleteRequest(ctx, deadletter.Request{Component: "relay", AggregateID: req.AggregateID, ID: gocql.TimeUUID()}))
	_, found, err := s.PendingFor(ctx, "relay", req.AggregateID)
	require.NoError(t, err)
	require.True(t, found)
	require.NoError(t, s.Finish(ctx, deadletter.Result{RequestID: req.ID, Component: "relay", AggregateID: req.AggregateID, DLQID: req.DLQID,
		Action: req.Action, RequestedBy: "t", Status: deadletter.StatusGone, Detail: "d", FinishedAt: time.Now().UTC()}))
	_, found, err = s.PendingFor(ctx, "relay", req.AggregateID)
	require.NoError(t, err)
	require.False(t, found)
	res, found, err := s.ReadResult(ctx, req.ID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, deadletter.StatusGone, res.Status)
	require.Equal(t, deadletter.ActionSkip, res.Action)
	require.Equal(t, "d", res.Detail)
	require.Equal(t, gocql.UUID{}, res.HeadDLQID)
}

// Redrives sums orderstream_dlq_redrives_total{status} of a registry.
func Redrives(t *testing.T, reg *prometheus.Registry, status string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != "orderstream_dlq_redrives_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Settle: the dead letter's event went through (unparked, deleted), went
// through but a later one failed (deleted, parked behind the new one), or
// failed again (one more failure, still parked).
func settle(t *testing.T, s Store) {
	ctx := context.Background()
	const c = "projector/x"
	park := func(agg gocql.UUID, seq int64) deadletter.Entry {
		id, err := s.Park(ctx, c, Event(agg, seq, "OrderShipped"), errors.New("bad"))
		require.NoError(t, err)
		e, _, err := s.Get(ctx, id)
		require.NoError(t, err)
		return e
	}

	a := gocql.UUID(uuid.New())
	e := park(a, 3)
	res, err := s.Settle(ctx, e, deadletter.Outcome{Progress: 7, Head: 7, Applied: 5})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusSucceeded, res.Status)
	require.True(t, res.Unparked)
	_, parked, _ := s.ReadParked(ctx, c, a)
	require.False(t, parked)
	_, found, _ := s.Get(ctx, e.ID)
	require.False(t, found)

	b := gocql.UUID(uuid.New())
	e = park(b, 3)
	later := park(b, 5) // what the re-drive dead-lettered
	res, err = s.Settle(ctx, e, deadletter.Outcome{Progress: 4, Head: 7, Applied: 2, Parked: true})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusFailed, res.Status)
	require.False(t, res.Unparked)
	require.Equal(t, later.ID, res.HeadDLQID)
	_, found, _ = s.Get(ctx, e.ID)
	require.False(t, found)
	p, parked, _ := s.ReadParked(ctx, c, b)
	require.True(t, parked)
	require.Equal(t, int64(5), p.Sequence)

	d := gocql.UUID(uuid.New())
	e = park(d, 3)
	res, err = s.Settle(ctx, e, deadletter.Outcome{Progress: 2, Head: 7, Err: errors.New("timeout writing")})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusFailed, res.Status)
	require.Equal(t, e.ID, res.HeadDLQID)
	require.Contains(t, res.Detail, "timeout writing")
	got, _, _ := s.Get(ctx, e.ID)
	require.Equal(t, 2, got.FailureCount)
	require.Equal(t, "timeout writing", got.Error)
}
