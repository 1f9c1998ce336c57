package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/deadletter/deadlettertest"
)

// The use cases of the DLQ on the in-memory queue, with a fake component
// carrying out the requests: no server.

const comp = "projector/order-read-model"

// fixedVersions is the event store's versions, by aggregate.
type fixedVersions map[gocql.UUID]int64

func (v fixedVersions) Version(_ context.Context, id gocql.UUID) (int64, string, error) {
	return v[id], "order", nil
}

func newTestQueue(t *testing.T, tune ...func(*DLQConfig)) (*queue, *deadletter.Memory, fixedVersions) {
	t.Helper()
	cfg := testConfig().DLQ
	cfg.PollEvery, cfg.RetryTimeout = 5*time.Millisecond, 5*time.Second
	for _, f := range tune {
		f(&cfg)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	mem, v := deadletter.NewMemory(), fixedVersions{}
	return newQueue(mem, v, cfg, zerolog.Nop(), m), mem, v
}

// serve runs a replica of component on mem until the test ends: each
// request's re-drive ends as outcome says.
func serve(t *testing.T, mem *deadletter.Memory, component string, outcome func(deadletter.Request, deadletter.Entry) deadletter.Outcome) {
	t.Helper()
	redrive := func(ctx context.Context, req deadletter.Request, e deadletter.Entry) (deadletter.Result, error) {
		return mem.Settle(ctx, e, outcome(req, e))
	}
	r, err := deadletter.NewRetrierOn(deadletter.RetryConfig{Every: 5 * time.Millisecond, ClaimFor: 10 * time.Second}, mem, component, redrive, zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(r.Every())
		defer tick.Stop()
		for r.Poll(ctx) == nil {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// through re-drives the aggregate through its head.
func through(_ deadletter.Request, e deadletter.Entry) deadletter.Outcome {
	return deadletter.Outcome{Progress: e.Sequence + 2, Head: e.Sequence + 2, Applied: 3}
}

func park(t *testing.T, mem *deadletter.Memory, agg gocql.UUID, seq int64) deadletter.Entry {
	t.Helper()
	id, err := mem.Park(context.Background(), comp, deadlettertest.Event(agg, seq, "OrderShipped"), errors.New("bad"))
	require.NoError(t, err)
	e, _, err := mem.Get(context.Background(), id)
	require.NoError(t, err)
	return e
}

func raw(t *testing.T, mem *deadletter.Memory) deadletter.Entry {
	t.Helper()
	require.NoError(t, mem.Raw(context.Background(), "relay/cdc", map[string]any{"row": 1}, errors.New("unreadable")))
	sums, err := mem.Summaries(context.Background(), deadletter.Filter{Component: "relay/cdc"}, gocql.UUID{}, 1)
	require.NoError(t, err)
	e, _, err := mem.Get(context.Background(), sums[0].ID)
	require.NoError(t, err)
	return e
}

func TestStatusNames(t *testing.T) {
	for s, want := range map[status]string{
		statusSucceeded: "succeeded", statusFailed: "failed", statusGone: "gone", statusPending: "pending", statusPurged: "purged",
		statusNotRetriable: "not_retriable", statusNotAttempted: "not_attempted", statusError: "error",
	} {
		require.Equal(t, want, s.String())
	}
	_, err := statusOfResult("odd")
	require.Error(t, err)
}

func TestRetry(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t)
	_, err := q.Retry(ctx, gocql.TimeUUID(), "ops")
	require.ErrorAs(t, err, new(errNotFound))
	_, err = q.Retry(ctx, raw(t, mem).ID, "ops")
	require.ErrorAs(t, err, new(errNotRetriable))

	agg := gocql.UUID(uuid.New())
	e := park(t, mem, agg, 3)
	serve(t, mem, comp, through)
	out, err := q.Retry(ctx, e.ID, "ops")
	require.NoError(t, err)
	require.Equal(t, statusSucceeded, out.Status, out.Detail)
	require.Equal(t, e.ID, out.DLQID)
	require.Equal(t, agg, out.AggregateID)
	require.Equal(t, deadletter.ActionRetry, out.Action)
	require.Equal(t, "ops", out.RequestedBy)
	require.False(t, out.Joined)
	require.Equal(t, int64(5), out.Progress)
	require.Nil(t, out.Purged, "a retry says nothing of purging")
	_, parked, _ := mem.ReadParked(ctx, comp, agg)
	require.False(t, parked)
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.requested.WithLabelValues(comp, "retry")))
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.succeeded.WithLabelValues(comp, "retry")))

	// Once resolved it is gone: the next retry finds nothing.
	_, err = q.Retry(ctx, e.ID, "ops")
	require.ErrorAs(t, err, new(errNotFound))
}

// Without an answer within dlq.retry_timeout a retry is pending; a second
// retry of the same aggregate joins the first's request.
func TestRetryPendingAndJoined(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t, func(c *DLQConfig) { c.RetryTimeout = 30 * time.Millisecond })
	e := park(t, mem, gocql.UUID(uuid.New()), 2)
	first, err := q.Retry(ctx, e.ID, "a")
	require.NoError(t, err)
	require.Equal(t, statusPending, first.Status)
	require.Contains(t, first.Detail, "GET /v1/dlq/"+e.ID.String())
	second, err := q.Retry(ctx, e.ID, "b")
	require.NoError(t, err)
	require.Equal(t, statusPending, second.Status)
	require.True(t, second.Joined)
	require.Equal(t, first.RequestID, second.RequestID)
	require.Equal(t, "a", second.RequestedBy)
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.requested.WithLabelValues(comp, "retry")), "one request")
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.unresolved.WithLabelValues(comp, "retry", "pending")))

	d, err := q.Detail(ctx, e.ID)
	require.NoError(t, err)
	require.NotNil(t, d.Pending)
	require.Equal(t, first.RequestID, d.Pending.ID)
}

// A failed re-drive reports the dead letter the aggregate is parked behind.
func TestRetryFailedAgain(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t)
	e := park(t, mem, gocql.UUID(uuid.New()), 2)
	serve(t, mem, comp, func(deadletter.Request, deadletter.Entry) deadletter.Outcome {
		return deadletter.Outcome{Progress: 1, Head: 4, Err: errors.New("still broken")}
	})
	out, err := q.Retry(ctx, e.ID, "ops")
	require.NoError(t, err)
	require.Equal(t, statusFailed, out.Status)
	require.Equal(t, e.ID, out.HeadDLQID)
	require.Contains(t, out.Detail, "still broken")
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.failed.WithLabelValues(comp, "retry")))
	got, _, _ := mem.Get(ctx, e.ID)
	require.Equal(t, 2, got.FailureCount)
}

func TestDetail(t *testing.T) {
	ctx := context.Background()
	q, mem, v := newTestQueue(t)
	agg := gocql.UUID(uuid.New())
	older := park(t, mem, agg, 3)
	head := park(t, mem, agg, 5) // re-parked behind a later event
	v[agg] = 9

	d, err := q.Detail(ctx, head.ID)
	require.NoError(t, err)
	require.True(t, d.Head)
	require.NotNil(t, d.WaitingEvents)
	require.Equal(t, int64(4), *d.WaitingEvents)
	require.Nil(t, d.Pending)

	d, err = q.Detail(ctx, older.ID)
	require.NoError(t, err)
	require.False(t, d.Head)
	require.Nil(t, d.WaitingEvents)

	r := raw(t, mem)
	d, err = q.Detail(ctx, r.ID)
	require.NoError(t, err)
	require.False(t, d.Head)
	require.Equal(t, `{"row":1}`, d.Payload)

	_, err = q.Detail(ctx, gocql.TimeUUID())
	require.ErrorAs(t, err, new(errNotFound))

	// The event store behind the head: no events waiting is 0, never less.
	v[agg] = 2
	d, err = q.Detail(ctx, head.ID)
	require.NoError(t, err)
	require.Equal(t, int64(0), *d.WaitingEvents)
}

// The purge policy: the head of a parked aggregate only with skip, through
// its component; anything else is deleted at once.
func TestPurge(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t)
	agg := gocql.UUID(uuid.New())
	older := park(t, mem, agg, 3)
	head := park(t, mem, agg, 5)

	_, err := q.Purge(ctx, head.ID, false, "ops")
	var ph errParkedHead
	require.ErrorAs(t, err, &ph)
	require.Equal(t, head.ID, ph.e.ID)
	_, found, _ := mem.Get(ctx, head.ID)
	require.True(t, found, "nothing purged")

	out, err := q.Purge(ctx, older.ID, false, "ops")
	require.NoError(t, err)
	require.Equal(t, statusPurged, out.Status)
	require.True(t, *out.Purged)
	require.Equal(t, agg, out.AggregateID)
	_, found, _ = mem.Get(ctx, older.ID)
	require.False(t, found)
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.purged.WithLabelValues(comp, "delete")))

	r := raw(t, mem)
	out, err = q.Purge(ctx, r.ID, true, "ops")
	require.NoError(t, err, "skip on what is not a head is a plain delete")
	require.Equal(t, statusPurged, out.Status)

	var skips []deadletter.Action
	serve(t, mem, comp, func(req deadletter.Request, e deadletter.Entry) deadletter.Outcome {
		skips = append(skips, req.Action)
		return deadletter.Outcome{Progress: e.Sequence, Head: e.Sequence}
	})
	out, err = q.Purge(ctx, head.ID, true, "ops")
	require.NoError(t, err)
	require.Equal(t, statusSucceeded, out.Status)
	require.True(t, *out.Purged)
	require.Equal(t, []deadletter.Action{deadletter.ActionSkip}, skips)
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.purged.WithLabelValues(comp, "skip")))
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.requested.WithLabelValues(comp, "skip")))
}

func TestRetryBulk(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t)
	var heads []deadletter.Entry
	for i := range 4 {
		heads = append(heads, park(t, mem, gocql.UUID(uuid.New()), int64(i+1)))
	}
	r := raw(t, mem)
	serve(t, mem, comp, through)
	serve(t, mem, "relay/cdc", through) // never asked: raw input is not retriable

	b, err := q.RetryBulk(ctx, deadletter.Filter{}, 10, "ops")
	require.NoError(t, err)
	require.Equal(t, 5, b.Matched)
	require.Equal(t, 4, b.Requested)
	require.Equal(t, 4, b.Succeeded)
	require.Equal(t, 1, b.NotRetriable)
	require.True(t, b.Complete)
	require.Len(t, b.Results, 5)
	require.Equal(t, r.ID, b.Results[0].DLQID, "newest first")
	require.Equal(t, statusNotRetriable, b.Results[0].Status)
	for i, o := range b.Results[1:] {
		require.Equal(t, heads[len(heads)-1-i].ID, o.DLQID)
		require.Equal(t, statusSucceeded, o.Status)
		require.Nil(t, o.Purged)
	}

	// A limit below what matches: not complete.
	park(t, mem, gocql.UUID(uuid.New()), 1)
	park(t, mem, gocql.UUID(uuid.New()), 1)
	b, err = q.RetryBulk(ctx, deadletter.Filter{Component: comp}, 1, "ops")
	require.NoError(t, err)
	require.Equal(t, 1, b.Matched)
	require.False(t, b.Complete)
}

// The shared rate limiter and dlq.bulk_timeout: what was not started in
// time is reported not attempted, and the call is not complete.
func TestRetryBulkTimeout(t *testing.T) {
	ctx := context.Background()
	q, mem, _ := newTestQueue(t, func(c *DLQConfig) {
		c.BulkRate, c.BulkBurst, c.BulkTimeout, c.RetryTimeout = 1, 1, 300*time.Millisecond, 50*time.Millisecond
	})
	for i := range 3 {
		park(t, mem, gocql.UUID(uuid.New()), int64(i+1))
	}
	b, err := q.RetryBulk(ctx, deadletter.Filter{}, 10, "ops")
	require.NoError(t, err)
	require.Equal(t, 3, b.Matched)
	require.Equal(t, 1, b.Pending, "one started at the burst, unanswered")
	require.Equal(t, 2, b.NotAttempted)
	require.Equal(t, 1, b.Requested)
	require.False(t, b.Complete)
	for _, o := range b.Results {
		if o.Status == statusNotAttempted {
			require.Contains(t, o.Detail, "dlq.bulk_timeout")
		}
	}
}

// A purge by filter: heads without skip refuse it all; with skip the
// heads go through their component and the rest are deleted.
func TestPurgeBulk(t *testing.T) {
	q, mem, _ := newTestQueue(t)
	raw(t, mem)
	other := park(t, mem, gocql.UUID(uuid.New()), 7)
	agg := gocql.UUID(uuid.New())
	older, head := park(t, mem, agg, 1), park(t, mem, agg, 2)
	ctx := context.Background()

	_, err := q.PurgeBulk(ctx, deadletter.Filter{Component: comp}, false, "ops")
	require.Equal(t, errParkedHeads{heads: 2, matched: 3}, err)
	st, _ := mem.ReadStats(ctx)
	require.Equal(t, 4, st.Total, "nothing purged")

	serve(t, mem, comp, func(_ deadletter.Request, e deadletter.Entry) deadletter.Outcome {
		return deadletter.Outcome{Progress: e.Sequence, Head: e.Sequence}
	})
	b, err := q.PurgeBulk(ctx, deadletter.Filter{}, true, "ops")
	require.NoError(t, err)
	require.Equal(t, 4, b.Matched)
	require.Equal(t, 4, b.Purged)
	require.Equal(t, 2, b.Succeeded, "the two heads, skipped by their component")
	require.Equal(t, 2, b.Requested)
	require.True(t, b.Complete)
	byID := map[gocql.UUID]outcome{}
	for _, o := range b.Results {
		byID[o.DLQID] = o
		require.True(t, *o.Purged)
	}
	require.Equal(t, statusPurged, byID[older.ID].Status)
	require.Equal(t, statusSucceeded, byID[head.ID].Status)
	require.Equal(t, deadletter.ActionSkip, byID[other.ID].Action)
	st, _ = mem.ReadStats(ctx)
	require.Equal(t, 0, st.Total)
	require.Equal(t, 2.0, testutil.ToFloat64(q.m.purged.WithLabelValues(comp, "skip")))
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.purged.WithLabelValues(comp, "delete")))
}

// Stats reads the queue and sets the gauges from it.
func TestStatsSetsTheGauges(t *testing.T) {
	q, mem, _ := newTestQueue(t)
	park(t, mem, gocql.UUID(uuid.New()), 1)
	st, err := q.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, st.Total)
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.parked.WithLabelValues(comp)))
	require.Equal(t, 1.0, testutil.ToFloat64(q.m.messages.WithLabelValues(comp, "OrderShipped")))
}
