package deadletter_test

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
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func event(id gocql.UUID, seq int64, typ string) eventstore.Event {
	return eventstore.Event{AggregateID: id, AggregateType: "order", Sequence: seq, EventID: gocql.UUID(uuid.New()), Type: typ, Data: []byte(`{"n":1}`)}
}

func count(t *testing.T, s *gocql.Session, stmt string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.Query(stmt, args...).Scan(&n))
	return n
}

// The same event failing again (a retry, a re-read after a restart) counts
// one more failure of its dead letter instead of adding another.
func TestParkTwiceIsOneDeadLetter(t *testing.T) {
	ctx := context.Background()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	agg := gocql.UUID(uuid.New())
	e := event(agg, 3, "OrderConfirmed")
	first, err := deadletter.Park(ctx, s, "projector/x", e, errors.New("boom 1"))
	require.NoError(t, err)
	again, err := deadletter.Park(ctx, s, "projector/x", e, errors.New("boom 2"))
	require.NoError(t, err)
	require.Equal(t, first, again)
	// Another component's failure of the same event is its own.
	other, err := deadletter.Park(ctx, s, "relay", e, errors.New("boom"))
	require.NoError(t, err)
	require.NotEqual(t, first, other)

	got, found, err := deadletter.Get(ctx, s, first)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 2, got.FailureCount)
	require.Equal(t, "boom 2", got.Error)
	require.Len(t, got.ErrorHistory, 2)
	require.Contains(t, got.ErrorHistory[0], "boom 1")
	require.Contains(t, got.ErrorHistory[1], "boom 2")
	require.Equal(t, int64(3), got.Sequence)
	require.Equal(t, "OrderConfirmed", got.EventType)
	require.True(t, got.ParksAggregate)
	require.True(t, got.LastFailedAt.After(got.FirstFailedAt) || got.LastFailedAt.Equal(got.FirstFailedAt))

	p, parked, err := deadletter.ReadParked(ctx, s, "projector/x", agg)
	require.NoError(t, err)
	require.True(t, parked)
	require.Equal(t, first, p.DLQID)
	head, err := deadletter.IsHead(ctx, s, got)
	require.NoError(t, err)
	require.True(t, head)

	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letter_queue`))
	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letters_by_aggregate WHERE aggregate_id = ?`, agg))
	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letters_by_event_type WHERE event_type = ?`, "OrderConfirmed"))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letters_by_component WHERE component = ?`, "relay"))

	require.NoError(t, deadletter.Delete(ctx, s, got.Summary()))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letter_queue`))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letters_by_aggregate WHERE aggregate_id = ?`, agg))
	require.Equal(t, 0, count(t, s, `SELECT count(*) FROM dead_letters_by_component WHERE component = ?`, "projector/x"))
	refailed, err := deadletter.Refail(ctx, s, first, errors.New("late"))
	require.NoError(t, err)
	require.False(t, refailed, "a purged dead letter is not brought back")
	_, found, err = deadletter.Get(ctx, s, first)
	require.NoError(t, err)
	require.False(t, found)
}

// The merge of component partitions relies on ordering ids as the
// database does, ties of timestamp included.
func TestCompareTimeUUIDMatchesTheDatabase(t *testing.T) {
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	now := time.Now()
	var want []gocql.UUID
	for i := range 40 {
		at := now.Add(time.Duration(i%5) * time.Microsecond) // ties of timestamp
		u := gocql.TimeUUIDWith(gocql.UUIDFromTime(at).Timestamp(), uint32(i*977), []byte{byte(i * 37), byte(i), 0x80, 0x7f, byte(255 - i), 1})
		want = append(want, u)
		require.NoError(t, s.Query(`INSERT INTO dead_letters_by_component (component, id) VALUES ('c', ?)`, u).Exec())
	}
	sort.Slice(want, func(i, j int) bool { return deadletter.CompareTimeUUID(want[i], want[j]) > 0 })
	iter := s.Query(`SELECT id FROM dead_letters_by_component WHERE component = 'c'`).Iter()
	var got []gocql.UUID
	var u gocql.UUID
	for iter.Scan(&u) {
		got = append(got, u)
	}
	require.NoError(t, iter.Close())
	require.Equal(t, want, got)
}

func TestListFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
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
		id, err := deadletter.Park(ctx, s, sp.comp, event(sp.agg, sp.seq, sp.typ), errors.New("bad"))
		require.NoError(t, err)
		all = append(all, id)
	}
	mid := time.Now()
	require.NoError(t, deadletter.Raw(ctx, s, "relay/cdc", map[string]any{"row": 1}, errors.New("unreadable")))

	ids := func(f deadletter.Filter) []gocql.UUID {
		page, err := deadletter.List(ctx, s, f, gocql.UUID{}, 100)
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

	// Pages of two over the merged component partitions: every entry once,
	// newest first.
	var paged []gocql.UUID
	after := gocql.UUID{}
	for range 10 {
		page, err := deadletter.List(ctx, s, deadletter.Filter{}, after, 2)
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
	page, err := deadletter.List(ctx, s, deadletter.Filter{Until: mid}, gocql.UUID{}, 3)
	require.NoError(t, err)
	require.Len(t, page.Entries, 3)
	page, err = deadletter.List(ctx, s, deadletter.Filter{Until: mid}, page.Next, 3)
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)

	st, err := deadletter.ReadStats(ctx, s)
	require.NoError(t, err)
	require.Equal(t, 6, st.Total)
	require.Equal(t, map[string]int{"relay": 1, "projector/x": 2, "projector/y": 2, "relay/cdc": 1}, st.ByComponent)
	require.Equal(t, map[string]int{"OrderConfirmed": 1, "OrderShipped": 3, "OrderCreated": 1}, st.ByEventType)
	require.Equal(t, map[string]int{"relay": 1, "projector/x": 2, "projector/y": 2}, st.Parked)
	require.Equal(t, all[0], st.Oldest.ID)
	require.Contains(t, st.ByComponentAndType, deadletter.Count{Component: "projector/x", EventType: "OrderShipped", Count: 2})
	require.Contains(t, st.ByComponentAndType, deadletter.Count{Component: "relay/cdc", EventType: "", Count: 1})
}

// Backfill writes the query-table rows of dead letters written without
// them (before schema v0004), once.
func TestBackfill(t *testing.T) {
	ctx := context.Background()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	id := gocql.TimeUUID()
	agg := gocql.UUID(uuid.New())
	require.NoError(t, s.Query(`INSERT INTO dead_letter_queue (id, component, aggregate_id, event_type, sequence_number, parks_aggregate, error_message, failure_count) VALUES (?, 'relay', ?, 'OrderCreated', 1, true, 'old', 1)`, id, agg).Exec())
	n, err := deadletter.Backfill(ctx, s)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = deadletter.Backfill(ctx, s)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	page, err := deadletter.List(ctx, s, deadletter.Filter{AggregateID: agg}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, "old", page.Entries[0].Error)
}

// Two retries of one aggregate at once are one request; the second caller
// is handed the first one's.
func TestSubmitKeepsOneRequestPerAggregate(t *testing.T) {
	ctx := context.Background()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	agg := gocql.UUID(uuid.New())
	var (
		created atomic.Int32
		wg      sync.WaitGroup
		mu      sync.Mutex
		seen    = map[gocql.UUID]bool{}
	)
	for range 8 {
		wg.Go(func() {
			r, ok, err := deadletter.Submit(ctx, s, deadletter.Request{Component: "relay", AggregateID: agg, DLQID: gocql.TimeUUID(), Action: deadletter.ActionRetry, RequestedBy: "t"})
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
	pending, err := deadletter.Pending(ctx, s, "relay")
	require.NoError(t, err)
	require.Len(t, pending, 1)
	require.Equal(t, "t", pending[0].RequestedBy)
	require.Equal(t, deadletter.ActionRetry, pending[0].Action)
}

// Two replicas of a component polling the same requests carry each out
// once; the outcome is written and the request deleted.
func TestRetrierCarriesOutEachRequestOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	const component = "projector/x"
	var calls sync.Map
	var total atomic.Int32
	redrive := func(ctx context.Context, req deadletter.Request, e deadletter.Entry) (deadletter.Result, error) {
		if _, dup := calls.LoadOrStore(req.ID, true); dup {
			t.Errorf("request %s carried out twice", req.ID)
		}
		total.Add(1)
		return deadletter.Settle(ctx, s, e, deadletter.Outcome{Progress: e.Sequence, Head: e.Sequence, Applied: 1})
	}
	cfg := deadletter.RetryConfig{Every: 20 * time.Millisecond, ClaimFor: 10 * time.Second}
	reg := prometheus.NewRegistry()
	r1, err := deadletter.NewRetrier(cfg, s, component, redrive, zerolog.Nop(), reg)
	require.NoError(t, err)
	reg2 := prometheus.NewRegistry()
	r2, err := deadletter.NewRetrier(cfg, s, component, redrive, zerolog.Nop(), reg2)
	require.NoError(t, err)

	var reqs []deadletter.Request
	for i := range 6 {
		agg := gocql.UUID(uuid.New())
		id, err := deadletter.Park(ctx, s, component, event(agg, int64(i+1), "OrderShipped"), errors.New("bad"))
		require.NoError(t, err)
		req, created, err := deadletter.Submit(ctx, s, deadletter.Request{Component: component, AggregateID: agg, DLQID: id, Action: deadletter.ActionRetry, RequestedBy: "t"})
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
				if pending, err := deadletter.Pending(ctx, s, component); err == nil && len(pending) == 0 {
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
		res, found, err := deadletter.ReadResult(ctx, s, req.ID)
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
		require.Equal(t, req.DLQID, res.DLQID)
		require.Equal(t, "t", res.RequestedBy)
		_, parked, err := deadletter.ReadParked(ctx, s, component, req.AggregateID)
		require.NoError(t, err)
		require.False(t, parked)
	}
	pending, err := deadletter.Pending(ctx, s, component)
	require.NoError(t, err)
	require.Empty(t, pending)
	require.Equal(t, 0, count(t, s, `SELECT count(*) FROM dead_letter_queue`))

	// A request whose dead letter is gone is answered gone.
	req, _, err := deadletter.Submit(ctx, s, deadletter.Request{Component: component, AggregateID: gocql.UUID(uuid.New()), DLQID: gocql.TimeUUID(), Action: deadletter.ActionRetry})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_ = r1.Poll(ctx)
		_, found, err := deadletter.ReadResult(ctx, s, req.ID)
		return err == nil && found
	}, 30*time.Second, cfg.Every)
	res, found, err := deadletter.AwaitResult(ctx, s, req.ID, 10*time.Millisecond)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, deadletter.StatusGone, res.Status)
	require.Equal(t, 6.0, redrives(t, reg, "succeeded")+redrives(t, reg2, "succeeded"))
	require.Equal(t, 1.0, redrives(t, reg, "gone"))
}

// redrives sums orderstream_dlq_redrives_total{status} of a registry.
func redrives(t *testing.T, reg *prometheus.Registry, status string) float64 {
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
func TestSettle(t *testing.T) {
	ctx := context.Background()
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	const c = "projector/x"
	park := func(agg gocql.UUID, seq int64) deadletter.Entry {
		id, err := deadletter.Park(ctx, s, c, event(agg, seq, "OrderShipped"), errors.New("bad"))
		require.NoError(t, err)
		e, _, err := deadletter.Get(ctx, s, id)
		require.NoError(t, err)
		return e
	}

	a := gocql.UUID(uuid.New())
	e := park(a, 3)
	res, err := deadletter.Settle(ctx, s, e, deadletter.Outcome{Progress: 7, Head: 7, Applied: 5})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusSucceeded, res.Status)
	require.True(t, res.Unparked)
	_, parked, _ := deadletter.ReadParked(ctx, s, c, a)
	require.False(t, parked)
	_, found, _ := deadletter.Get(ctx, s, e.ID)
	require.False(t, found)

	b := gocql.UUID(uuid.New())
	e = park(b, 3)
	later := park(b, 5) // what the re-drive dead-lettered
	res, err = deadletter.Settle(ctx, s, e, deadletter.Outcome{Progress: 4, Head: 7, Applied: 2, Parked: true})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusFailed, res.Status)
	require.False(t, res.Unparked)
	require.Equal(t, later.ID, res.HeadDLQID)
	_, found, _ = deadletter.Get(ctx, s, e.ID)
	require.False(t, found)
	p, parked, _ := deadletter.ReadParked(ctx, s, c, b)
	require.True(t, parked)
	require.Equal(t, int64(5), p.Sequence)

	d := gocql.UUID(uuid.New())
	e = park(d, 3)
	res, err = deadletter.Settle(ctx, s, e, deadletter.Outcome{Progress: 2, Head: 7, Err: errors.New("timeout writing")})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusFailed, res.Status)
	require.Equal(t, e.ID, res.HeadDLQID)
	require.Contains(t, res.Detail, "timeout writing")
	got, _, _ := deadletter.Get(ctx, s, e.ID)
	require.Equal(t, 2, got.FailureCount)
	require.Equal(t, "timeout writing", got.Error)
}
