package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/orderstream/orderstream/pkg/deadletter"
)

// The application layer of the DLQ: what an operator can do with the
// queue (list, show, retry, retry by filter, purge, purge by filter), its
// policies (what can be retried, when a purge must go through the
// component, the rate of bulk calls) and its metrics, with typed outcomes.
// The HTTP handlers (api.go) decode, call one method of queue and map the
// outcome; nothing here knows HTTP, and nothing here names a table.

// deadLetters is what the use cases need of the dead-letter queue
// (deadletter.Store; deadletter.Memory in unit tests).
type deadLetters interface {
	Get(ctx context.Context, id gocql.UUID) (deadletter.Entry, bool, error)
	List(ctx context.Context, f deadletter.Filter, after gocql.UUID, limit int) (deadletter.ListPage, error)
	Summaries(ctx context.Context, f deadletter.Filter, after gocql.UUID, n int) ([]deadletter.Summary, error)
	IsHead(ctx context.Context, e deadletter.Entry) (bool, error)
	ParkedRows(ctx context.Context, component string) (map[gocql.UUID]deadletter.ParkedAggregate, error)
	PendingFor(ctx context.Context, component string, aggregateID gocql.UUID) (deadletter.Request, bool, error)
	Submit(ctx context.Context, r deadletter.Request) (deadletter.Request, bool, error)
	AwaitResult(ctx context.Context, id gocql.UUID, every time.Duration) (deadletter.Result, bool, error)
	Delete(ctx context.Context, s deadletter.Summary) error
	ReadStats(ctx context.Context) (deadletter.Stats, error)
	Backfill(ctx context.Context) (int, error)
}

// versions reads an aggregate's current version (eventstore.Store).
type versions interface {
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
}

// queue carries out the DLQ use cases.
type queue struct {
	store    deadLetters
	versions versions
	cfg      DLQConfig
	limiter  *rate.Limiter // of the bulk calls' requests, shared by all of them
	logger   zerolog.Logger
	m        *dlqMetrics
}

func newQueue(store deadLetters, v versions, cfg DLQConfig, logger zerolog.Logger, m *dlqMetrics) *queue {
	return &queue{store: store, versions: v, cfg: cfg, logger: logger, m: m, limiter: rate.NewLimiter(rate.Limit(cfg.BulkRate), cfg.BulkBurst)}
}

// status is the outcome of one dead letter's retry, skip or purge.
type status int

const (
	statusSucceeded    status = iota + 1 // re-driven through its head, the aggregate unparked
	statusFailed                         // an event failed again; the aggregate stays parked
	statusGone                           // the dead letter no longer existed; nothing was done
	statusPending                        // the component did not answer within dlq.retry_timeout; it still will
	statusPurged                         // deleted (not the head of a parked aggregate)
	statusNotRetriable                   // input not tied to an event: nothing to re-drive
	statusNotAttempted                   // dlq.bulk_timeout came first
	statusError                          // the database did not answer
)

var statusNames = map[status]string{
	statusSucceeded: deadletter.StatusSucceeded, statusFailed: deadletter.StatusFailed, statusGone: deadletter.StatusGone,
	statusPending: "pending", statusPurged: "purged", statusNotRetriable: "not_retriable", statusNotAttempted: "not_attempted", statusError: "error",
}

// String is the status as the API and the metrics name it.
func (s status) String() string { return statusNames[s] }

// statusOfResult is the status of a component's answer.
func statusOfResult(s string) (status, error) {
	switch s {
	case deadletter.StatusSucceeded:
		return statusSucceeded, nil
	case deadletter.StatusFailed:
		return statusFailed, nil
	case deadletter.StatusGone:
		return statusGone, nil
	}
	return 0, fmt.Errorf("a component answered with status %q", s)
}

// outcome is what became of one dead letter.
type outcome struct {
	DLQID       gocql.UUID
	Component   string
	AggregateID gocql.UUID // of a request (zero otherwise)
	RequestID   gocql.UUID // zero when no request was written
	Action      deadletter.Action
	RequestedBy string
	// Joined says a request for the same aggregate was pending already;
	// this is its outcome (two retries at once are one re-drive).
	Joined            bool
	Status            status
	Detail            string
	Applied, Progress int64
	Head              int64
	HeadDLQID         gocql.UUID
	// Purged is nil for a retry; for a purge it says whether the dead
	// letter is gone.
	Purged *bool
}

func purgedFlag(b bool) *bool { return &b }

// bulk is the outcome of a call over the dead letters a filter matches.
type bulk struct {
	Matched, Requested, Succeeded, Failed, Gone, Pending, NotRetriable, NotAttempted, Purged int
	// Complete says the call got through all the filter matched.
	Complete bool
	// Results has one outcome per matched dead letter, newest first.
	Results []outcome
}

// count adds o to the counters.
func (b *bulk) count(o outcome) {
	switch o.Status {
	case statusSucceeded:
		b.Succeeded++
	case statusFailed, statusError:
		b.Failed++
	case statusGone:
		b.Gone++
	case statusPending:
		b.Pending++
	case statusNotAttempted:
		b.NotAttempted++
	}
	if o.Status != statusNotAttempted && o.Status != statusError {
		b.Requested++
	}
	if o.Purged != nil && *o.Purged {
		b.Purged++
	}
}

// The refusals of the use cases; the handlers map each to its problem.
type (
	// errNotFound: there is no dead letter with that id.
	errNotFound struct{ id gocql.UUID }
	// errNotRetriable: the dead letter is input not tied to an event.
	errNotRetriable struct{ e deadletter.Entry }
	// errParkedHead: the dead letter heads its parked aggregate and the
	// purge did not ask to skip it.
	errParkedHead struct{ e deadletter.Entry }
	// errParkedHeads: a purge by filter matched heads without skip.
	errParkedHeads struct{ heads, matched int }
)

func (e errNotFound) Error() string { return "no dead letter " + e.id.String() }
func (e errNotRetriable) Error() string {
	return "dead letter " + e.e.ID.String() + " is not retriable"
}
func (e errParkedHead) Error() string {
	return "dead letter " + e.e.ID.String() + " heads a parked aggregate"
}
func (e errParkedHeads) Error() string {
	return fmt.Sprintf("%d of %d dead letters head parked aggregates", e.heads, e.matched)
}

// retriable reports whether a dead letter can be re-driven: an event that
// parks its aggregate (input that could not be tied to one cannot).
func retriable(s deadletter.Summary) bool {
	return s.ParksAggregate && s.AggregateID != (gocql.UUID{})
}

// List reads a page of dead letters.
func (q *queue) List(ctx context.Context, f deadletter.Filter, after gocql.UUID, limit int) (deadletter.ListPage, error) {
	return q.store.List(ctx, f, after, limit)
}

// entry reads dead letter id; errNotFound when there is none.
func (q *queue) entry(ctx context.Context, id gocql.UUID) (deadletter.Entry, error) {
	e, found, err := q.store.Get(ctx, id)
	if err == nil && !found {
		err = errNotFound{id}
	}
	return e, err
}

// detail is a dead letter with what holds on it.
type detail struct {
	deadletter.Entry
	// Head says its aggregate is parked behind it for its component.
	Head bool
	// WaitingEvents counts the aggregate's events after it (head only).
	WaitingEvents *int64
	// Pending is the request pending for its aggregate, if any.
	Pending *deadletter.Request
}

// Detail reads dead letter id, whether it heads its parked aggregate, how
// many events wait behind it, and the request pending for it.
func (q *queue) Detail(ctx context.Context, id gocql.UUID) (detail, error) {
	e, err := q.entry(ctx, id)
	if err != nil {
		return detail{}, err
	}
	d := detail{Entry: e}
	if !e.ParksAggregate || e.AggregateID == (gocql.UUID{}) {
		return d, nil
	}
	if d.Head, err = q.store.IsHead(ctx, e); err != nil {
		return detail{}, err
	}
	if d.Head {
		current, _, err := q.versions.Version(ctx, e.AggregateID)
		if err != nil {
			return detail{}, err
		}
		waiting := max(current-e.Sequence, 0)
		d.WaitingEvents = &waiting
	}
	req, pending, err := q.store.PendingFor(ctx, e.Component, e.AggregateID)
	if err != nil {
		return detail{}, err
	}
	if pending {
		d.Pending = &req
	}
	return d, nil
}

// Stats sums up the queue and sets the gauges from it.
func (q *queue) Stats(ctx context.Context) (deadletter.Stats, error) {
	st, err := q.store.ReadStats(ctx)
	if err != nil {
		return deadletter.Stats{}, err
	}
	q.m.set(st)
	return st, nil
}

// redrive asks s's component to re-drive its aggregate (action retry or
// skip) and waits up to wait for the outcome. A request already pending
// for that aggregate is joined rather than repeated.
func (q *queue) redrive(ctx context.Context, s deadletter.Summary, action deadletter.Action, who string, wait time.Duration) (outcome, error) {
	req, created, err := q.store.Submit(ctx, deadletter.Request{Component: s.Component, AggregateID: s.AggregateID, DLQID: s.ID, Action: action, RequestedBy: who})
	if err != nil {
		return outcome{}, err
	}
	if created {
		q.m.requested.WithLabelValues(s.Component, string(action)).Inc()
	}
	out := outcome{DLQID: req.DLQID, Component: req.Component, AggregateID: req.AggregateID, RequestID: req.ID,
		Action: req.Action, RequestedBy: req.RequestedBy, Joined: !created, Status: statusPending}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	res, found, err := q.store.AwaitResult(wctx, req.ID, q.cfg.PollEvery)
	if err != nil {
		return out, err
	}
	if !found {
		out.Detail = "the component has not answered yet; it carries the request out when it reads it (watch GET /v1/dlq/" + out.DLQID.String() + ")"
		if created {
			q.m.unresolved.WithLabelValues(s.Component, string(action), statusPending.String()).Inc()
		}
		return out, nil
	}
	if out.Status, err = statusOfResult(res.Status); err != nil {
		return out, err
	}
	out.Detail, out.Applied, out.Progress, out.Head, out.HeadDLQID = res.Detail, res.Applied, res.Progress, res.Head, res.HeadDLQID
	if created {
		switch out.Status {
		case statusSucceeded:
			q.m.succeeded.WithLabelValues(s.Component, string(action)).Inc()
		case statusFailed:
			q.m.failed.WithLabelValues(s.Component, string(action)).Inc()
		default:
			q.m.unresolved.WithLabelValues(s.Component, string(action), out.Status.String()).Inc()
		}
	}
	return out, nil
}

// skipped reports whether a skip of s left it purged: gone, or its
// component moved past its event.
func skipped(out outcome, s deadletter.Summary) bool {
	return out.Status == statusGone || (out.Status != statusPending && out.Status != statusError && out.Progress >= s.Sequence)
}

// Retry re-drives the aggregate of dead letter id through its component.
func (q *queue) Retry(ctx context.Context, id gocql.UUID, who string) (outcome, error) {
	e, err := q.entry(ctx, id)
	if err != nil {
		return outcome{}, err
	}
	if !retriable(e.Summary()) {
		return outcome{}, errNotRetriable{e}
	}
	q.logger.Info().Str("actor", who).Str("dlq_id", e.ID.String()).Str("component", e.Component).Str("aggregate_id", e.AggregateID.String()).
		Int64("sequence", e.Sequence).Msg("retry of a dead letter requested")
	return q.redrive(ctx, e.Summary(), deadletter.ActionRetry, who, q.cfg.RetryTimeout)
}

// RetryBulk re-drives the aggregates of up to limit dead letters f
// matches (those that can be re-driven), at the shared rate.
func (q *queue) RetryBulk(ctx context.Context, f deadletter.Filter, limit int, who string) (bulk, error) {
	sums, err := q.store.Summaries(ctx, f, gocql.UUID{}, limit+1)
	if err != nil {
		return bulk{}, err
	}
	b := bulk{Complete: len(sums) <= limit}
	sums = sums[:min(len(sums), limit)]
	b.Matched = len(sums)
	b.Results = make([]outcome, len(sums))
	var todo []int
	for i, s := range sums {
		if retriable(s) {
			todo = append(todo, i)
			continue
		}
		b.Results[i] = outcome{DLQID: s.ID, Component: s.Component, Status: statusNotRetriable,
			Detail: "input not tied to an event: nothing to re-drive; purge it"}
		b.NotRetriable++
	}
	q.logger.Info().Str("actor", who).Str("component", f.Component).Str("event_type", f.EventType).Str("aggregate_id", f.AggregateID.String()).
		Time("since", f.Since).Time("until", f.Until).Int("matched", len(sums)).Int("retriable", len(todo)).Msg("bulk retry requested")
	q.bulk(ctx, sums, todo, deadletter.ActionRetry, who, &b)
	b.Complete = b.Complete && b.NotAttempted == 0
	q.logger.Info().Str("actor", who).Int("succeeded", b.Succeeded).Int("failed", b.Failed).Int("pending", b.Pending).
		Int("not_attempted", b.NotAttempted).Msg("bulk retry done")
	return b, nil
}

// bulk sends the requests of sums[todo...], started at the rate of the
// shared limiter with at most BulkParallelism awaiting their outcome, for
// at most BulkTimeout, and counts the outcomes into b.
func (q *queue) bulk(ctx context.Context, sums []deadletter.Summary, todo []int, action deadletter.Action, who string, b *bulk) {
	deadline := time.Now().Add(q.cfg.BulkTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, q.cfg.BulkParallelism)
	)
	record := func(i int, out outcome) {
		mu.Lock()
		defer mu.Unlock()
		b.Results[i] = out
		b.count(out)
	}
	for n, i := range todo {
		s := sums[i]
		started := q.limiter.Wait(ctx) == nil
		if started {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				started = false
			}
		}
		if !started {
			for _, j := range todo[n:] {
				record(j, outcome{DLQID: sums[j].ID, Component: sums[j].Component, Status: statusNotAttempted,
					Detail: "dlq.bulk_timeout was reached first; repeat the call"})
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := q.redrive(ctx, s, action, who, min(q.cfg.RetryTimeout, time.Until(deadline)))
			if err != nil {
				q.logger.Warn().Err(err).Str("dlq_id", s.ID.String()).Msg("bulk request failed")
				out = outcome{DLQID: s.ID, Component: s.Component, Status: statusError, Detail: "the request could not be written or read: the database did not answer"}
			}
			if action == deadletter.ActionSkip {
				out.Purged = purgedFlag(skipped(out, s))
			}
			record(i, out)
		})
	}
	wg.Wait()
}

// Purge deletes dead letter id. The head of a parked aggregate is purged
// only with skip, through its component (which moves past its event and
// re-drives the events behind it); otherwise errParkedHead.
func (q *queue) Purge(ctx context.Context, id gocql.UUID, skip bool, who string) (outcome, error) {
	e, err := q.entry(ctx, id)
	if err != nil {
		return outcome{}, err
	}
	head, err := q.store.IsHead(ctx, e)
	if err != nil {
		return outcome{}, err
	}
	log := q.logger.Warn().Str("actor", who).Str("dlq_id", e.ID.String()).Str("component", e.Component).Str("event_type", e.EventType).
		Str("aggregate_id", e.AggregateID.String()).Int64("sequence", e.Sequence).Bool("skip", skip)
	switch {
	case head && !skip:
		log.Discard()
		return outcome{}, errParkedHead{e}
	case head:
		out, err := q.redrive(ctx, e.Summary(), deadletter.ActionSkip, who, q.cfg.RetryTimeout)
		if err != nil {
			log.Discard()
			return outcome{}, err
		}
		purged := skipped(out, e.Summary())
		out.Purged = &purged
		if purged {
			q.m.purged.WithLabelValues(e.Component, "skip").Inc()
		}
		log.Str("status", out.Status.String()).Bool("purged", purged).Msg("purge of the head of a parked aggregate: its component moves past it")
		return out, nil
	default:
		if err := q.store.Delete(ctx, e.Summary()); err != nil {
			log.Discard()
			return outcome{}, err
		}
		q.m.purged.WithLabelValues(e.Component, "delete").Inc()
		log.Msg("dead letter purged")
		return outcome{DLQID: e.ID, Component: e.Component, AggregateID: e.AggregateID, Status: statusPurged, Purged: purgedFlag(true)}, nil
	}
}

// PurgeBulk purges up to dlq.bulk_max dead letters f matches: deleted,
// or, for heads of parked aggregates and with skip, skipped by their
// components at the shared rate. Heads without skip refuse the whole call
// (errParkedHeads) before anything is purged.
func (q *queue) PurgeBulk(ctx context.Context, f deadletter.Filter, skip bool, who string) (bulk, error) {
	sums, err := q.store.Summaries(ctx, f, gocql.UUID{}, q.cfg.BulkMax+1)
	if err != nil {
		return bulk{}, err
	}
	b := bulk{Complete: len(sums) <= q.cfg.BulkMax}
	sums = sums[:min(len(sums), q.cfg.BulkMax)]
	b.Matched = len(sums)
	b.Results = make([]outcome, len(sums))
	heads, others, err := q.splitHeads(ctx, sums)
	if err != nil {
		return bulk{}, err
	}
	if len(heads) > 0 && !skip {
		return bulk{}, errParkedHeads{heads: len(heads), matched: len(sums)}
	}
	for _, i := range others {
		s := sums[i]
		out := outcome{DLQID: s.ID, Component: s.Component, Status: statusPurged}
		if err := q.store.Delete(ctx, s); err != nil {
			q.logger.Warn().Err(err).Str("dlq_id", s.ID.String()).Msg("purging a dead letter")
			out.Status, out.Detail = statusError, "the database did not answer; repeat the call"
			b.Failed++
		} else {
			out.Purged = purgedFlag(true)
			b.Purged++
			q.m.purged.WithLabelValues(s.Component, "delete").Inc()
		}
		b.Results[i] = out
	}
	q.bulk(ctx, sums, heads, deadletter.ActionSkip, who, &b)
	for _, i := range heads {
		if out := b.Results[i]; out.Purged != nil && *out.Purged {
			q.m.purged.WithLabelValues(sums[i].Component, "skip").Inc()
		}
	}
	b.Complete = b.Complete && b.NotAttempted == 0
	q.logger.Warn().Str("actor", who).Str("component", f.Component).Str("event_type", f.EventType).Bool("skip", skip).
		Int("matched", b.Matched).Int("purged", b.Purged).Int("heads_skipped", len(heads)).Int("failed", b.Failed).Bool("complete", b.Complete).
		Msg("dead letters purged by filter")
	return b, nil
}

// splitHeads sorts sums into heads of parked aggregates and the others,
// reading the parked set of each component involved once.
func (q *queue) splitHeads(ctx context.Context, sums []deadletter.Summary) (heads, others []int, err error) {
	parked := map[string]map[gocql.UUID]deadletter.ParkedAggregate{}
	for i, s := range sums {
		if retriable(s) {
			rows, ok := parked[s.Component]
			if !ok {
				if rows, err = q.store.ParkedRows(ctx, s.Component); err != nil {
					return nil, nil, err
				}
				parked[s.Component] = rows
			}
			if row, ok := rows[s.AggregateID]; ok && row.Heads(s) {
				heads = append(heads, i)
				continue
			}
		}
		others = append(others, i)
	}
	return heads, others, nil
}

// refreshGauges writes the query-table rows of dead letters written
// before them, then keeps the gauges current every dlq.stats_every until
// ctx ends.
func (q *queue) refreshGauges(ctx context.Context) error {
	n, err := q.store.Backfill(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		q.logger.Info().Int("dead_letters", n).Msg("wrote the query-table rows of dead letters written before them")
	}
	t := time.NewTicker(q.cfg.StatsEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, max(q.cfg.StatsEvery, 10*time.Second))
		st, err := q.store.ReadStats(rctx)
		cancel()
		if err == nil {
			q.m.set(st)
		} else if ctx.Err() == nil {
			q.logger.Warn().Err(err).Msg("reading dlq stats for the gauges")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
