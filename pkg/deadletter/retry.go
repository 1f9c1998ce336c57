package deadletter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// How a retry reaches a component: the dlq-service writes a request row to
// dlq_retry_requests (Submit), one per component and aggregate at a time;
// the component, polling its partition (Retrier.Poll), takes the request by
// LWT, re-drives the aggregate from its own progress through its head, in
// order, settles the dead letter (Settle), writes the outcome to
// dlq_retry_results and deletes the request. The dlq-service waits for the
// outcome (AwaitResult). No service calls another.

// Action is what a request asks of the component.
type Action string

const (
	// ActionRetry re-drives the aggregate from the component's progress.
	ActionRetry Action = "retry"
	// ActionSkip first moves the component's progress past the dead
	// letter's event without processing it (the relay never publishes it;
	// a projector's rows take its sequence as their version without its
	// effect), then re-drives the events after it like ActionRetry.
	ActionSkip Action = "skip"
)

// Request is a pending retry request.
type Request struct {
	ID          gocql.UUID // a timeuuid
	Component   string
	AggregateID gocql.UUID
	DLQID       gocql.UUID
	Action      Action
	RequestedBy string
	RequestedAt time.Time
	// ClaimedBy is the replica of the component working on it, if any.
	ClaimedBy string
}

// Submit writes r unless a request of the same component and aggregate is
// pending; then it returns that one with created false, and the caller
// waits for its outcome instead: two retries of one dead letter at once
// are one re-drive. r.ID and r.RequestedAt are set when zero.
func (s *Store) Submit(ctx context.Context, r Request) (Request, bool, error) {
	if r.RequestedAt.IsZero() {
		r.RequestedAt = time.Now().UTC()
	}
	if r.ID == (gocql.UUID{}) {
		r.ID = gocql.UUIDFromTime(r.RequestedAt)
	}
	var err error
	for range 3 {
		existing := map[string]any{}
		var applied bool
		applied, err = s.query(`INSERT INTO dlq_retry_requests (component, aggregate_id, request_id, dlq_id, action, requested_by, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
			r.Component, r.AggregateID, r.ID, r.DLQID, string(r.Action), r.RequestedBy, r.RequestedAt).WithContext(ctx).MapScanCAS(existing)
		if err == nil {
			if applied {
				return r, true, nil
			}
			return requestOf(existing), false, nil
		}
		if !cql.WriteUnavailable(err) || ctx.Err() != nil {
			break
		}
		// The outcome is unknown (a timeout, contention on the Paxos
		// round of retries asked at once): a read at serial consistency
		// completes any round in progress and says which request won.
		cur, found, rerr := s.pendingFor(ctx, r.Component, r.AggregateID, gocql.LocalSerial)
		if rerr == nil && found {
			return cur, cur.ID == r.ID, nil
		}
	}
	return r, false, fmt.Errorf("requesting a %s of %s for %s: %w", r.Action, r.AggregateID, r.Component, err)
}

func requestOf(row map[string]any) Request {
	r := Request{}
	r.Component, _ = row["component"].(string)
	r.AggregateID, _ = row["aggregate_id"].(gocql.UUID)
	r.ID, _ = row["request_id"].(gocql.UUID)
	r.DLQID, _ = row["dlq_id"].(gocql.UUID)
	action, _ := row["action"].(string)
	r.Action = Action(action)
	r.RequestedBy, _ = row["requested_by"].(string)
	r.RequestedAt, _ = row["requested_at"].(time.Time)
	r.ClaimedBy, _ = row["claimed_by"].(string)
	return r
}

// Pending reads component's pending requests.
func (s *Store) Pending(ctx context.Context, component string) ([]Request, error) {
	iter := s.query(`SELECT component, aggregate_id, request_id, dlq_id, action, requested_by, requested_at, claimed_by FROM dlq_retry_requests WHERE component = ?`, component).
		WithContext(ctx).Idempotent(true).PageSize(1000).Iter()
	var out []Request
	for {
		row := map[string]any{}
		if !iter.MapScan(row) {
			break
		}
		out = append(out, requestOf(row))
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading the retry requests of %s: %w", component, err)
	}
	return out, nil
}

// PendingFor reads the pending request of component for an aggregate.
func (s *Store) PendingFor(ctx context.Context, component string, aggregateID gocql.UUID) (Request, bool, error) {
	return s.pendingFor(ctx, component, aggregateID, 0)
}

// pendingFor reads at consistency c (0: the session's).
func (s *Store) pendingFor(ctx context.Context, component string, aggregateID gocql.UUID, c gocql.Consistency) (Request, bool, error) {
	row := map[string]any{}
	q := s.query(`SELECT component, aggregate_id, request_id, dlq_id, action, requested_by, requested_at, claimed_by FROM dlq_retry_requests WHERE component = ? AND aggregate_id = ?`, component, aggregateID).
		WithContext(ctx).Idempotent(true)
	if c != 0 {
		q = q.Consistency(c)
	}
	err := q.MapScan(row)
	if errors.Is(err, gocql.ErrNotFound) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("reading the retry request of %s for %s: %w", aggregateID, component, err)
	}
	return requestOf(row), true, nil
}

// Statuses of a finished request.
const (
	StatusSucceeded = "succeeded" // the aggregate was re-driven through its head and unparked
	StatusFailed    = "failed"    // an event failed again; the aggregate is parked (see HeadDLQID)
	StatusGone      = "gone"      // the dead letter no longer existed; nothing was done
)

// Result is the outcome of a request.
type Result struct {
	RequestID   gocql.UUID
	Component   string
	AggregateID gocql.UUID
	DLQID       gocql.UUID
	Action      Action
	RequestedBy string
	Status      string
	Detail      string
	// Applied counts the events the re-drive published or applied.
	Applied int64
	// Progress is the component's progress on the aggregate afterwards (the
	// last sequence published or applied), Head the aggregate's last
	// sequence when the re-drive read it.
	Progress, Head int64
	// HeadDLQID is, after a failure, the dead letter the aggregate is now
	// parked behind (the request's own, or a later event's).
	HeadDLQID  gocql.UUID
	FinishedAt time.Time
	// Unparked says the re-drive unparked the aggregate (not stored).
	Unparked bool
}

// ReadResult reads the outcome of request id, if it is finished.
func (s *Store) ReadResult(ctx context.Context, id gocql.UUID) (Result, bool, error) {
	r := Result{RequestID: id}
	var action string
	err := s.query(`SELECT component, aggregate_id, dlq_id, action, requested_by, status, detail, applied, progress, head, head_dlq_id, finished_at FROM dlq_retry_results WHERE request_id = ?`, id).
		WithContext(ctx).Idempotent(true).Scan(&r.Component, &r.AggregateID, &r.DLQID, &action, &r.RequestedBy, &r.Status, &r.Detail, &r.Applied, &r.Progress, &r.Head, &r.HeadDLQID, &r.FinishedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("reading the outcome of retry request %s: %w", id, err)
	}
	r.Action = Action(action)
	return r, true, nil
}

// AwaitResult reads the outcome of request id every `every` until it is
// there or ctx ends (then it returns found false and no error, unless the
// caller's own context was cancelled).
func (s *Store) AwaitResult(ctx context.Context, id gocql.UUID, every time.Duration) (Result, bool, error) {
	return awaitResult(ctx, s, id, every)
}

// resultReader reads dlq_retry_results (Store, Memory).
type resultReader interface {
	ReadResult(ctx context.Context, id gocql.UUID) (Result, bool, error)
}

func awaitResult(ctx context.Context, s resultReader, id gocql.UUID, every time.Duration) (Result, bool, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r, found, err := s.ReadResult(ctx, id)
		if found || (err != nil && ctx.Err() == nil) {
			return r, found, err
		}
		select {
		case <-ctx.Done():
			return Result{}, false, nil
		case <-t.C:
		}
	}
}

// Outcome is what a component's re-drive of an aggregate did.
type Outcome struct {
	// Progress is the component's progress on the aggregate afterwards.
	Progress int64
	// Head is the aggregate's last sequence when the re-drive read it.
	Head int64
	// Applied counts the events published or applied.
	Applied int64
	// Err is why the re-drive stopped before Head (nil when it reached it).
	Err error
	// Parked says an event was dead-lettered (Park) during the re-drive and
	// the aggregate is parked behind it.
	Parked bool
}

// Settle records what the re-drive of e's aggregate did, and returns the
// outcome to report. The component calls it while it still holds the
// aggregate (no other work on it runs meanwhile), and forgets the aggregate
// from its parked set when Result.Unparked.
//
//   - e's event went through and nothing was parked again: e is deleted
//     and the aggregate unparked, in one logged batch (succeeded);
//   - e's event went through but a later one was dead-lettered: e is
//     deleted, the aggregate stays parked behind the new dead letter
//     (failed);
//   - e's event failed again: e counts one more failure (Park did that when
//     it was dead-lettered again; Settle does it for any other error), and
//     the aggregate stays parked (failed).
func (s *Store) Settle(ctx context.Context, e Entry, o Outcome) (Result, error) {
	return settle(ctx, s, e, o)
}

// Resolve deletes dead letter e and unparks its aggregate, at once.
func (s *Store) Resolve(ctx context.Context, e Entry) error {
	b := s.batch(ctx, gocql.LoggedBatch)
	deleteRows(b, e.Summary())
	b.Query(`DELETE FROM parked_aggregates WHERE component = ? AND aggregate_id = ?`, e.Component, e.AggregateID)
	if err := b.exec(); err != nil {
		return fmt.Errorf("deleting dead letter %s and unparking %s: %w", e.ID, e.AggregateID, err)
	}
	return nil
}

// settler is what Settle changes (Store, Memory).
type settler interface {
	parkedReader
	Resolve(ctx context.Context, e Entry) error
	Delete(ctx context.Context, e Summary) error
	Refail(ctx context.Context, id gocql.UUID, cause error) (bool, error)
}

func settle(ctx context.Context, s settler, e Entry, o Outcome) (Result, error) {
	res := Result{Applied: o.Applied, Progress: o.Progress, Head: o.Head}
	passed := o.Progress >= e.Sequence
	switch {
	case passed && !o.Parked:
		if err := s.Resolve(ctx, e); err != nil {
			return res, err
		}
		res.Status, res.Unparked = StatusSucceeded, true
		res.Detail = fmt.Sprintf("re-driven through sequence %d; the aggregate is unparked", o.Progress)
		if o.Err != nil {
			res.Detail += fmt.Sprintf("; sequence %d failed transiently and is retried as any other: %v", o.Progress+1, o.Err)
		}
		return res, nil
	case passed:
		if err := s.Delete(ctx, e.Summary()); err != nil {
			return res, err
		}
	case !o.Parked:
		cause := o.Err
		if cause == nil {
			cause = fmt.Errorf("the re-drive stopped at sequence %d, before %d", o.Progress, e.Sequence)
		}
		if _, err := s.Refail(ctx, e.ID, cause); err != nil {
			return res, err
		}
	}
	res.Status = StatusFailed
	p, parked, err := s.ReadParked(ctx, e.Component, e.AggregateID)
	if err != nil {
		return res, err
	}
	if parked {
		res.HeadDLQID = p.DLQID
		res.Detail = fmt.Sprintf("sequence %d failed again: %s", p.Sequence, p.Reason)
	}
	if o.Err != nil && !o.Parked {
		res.Detail = fmt.Sprintf("sequence %d failed again: %v", o.Progress+1, o.Err)
	}
	return res, nil
}

// RetryConfig tunes how a component serves retry requests.
//
// The requests are read every Every while there are some; while reads find
// none, the pause doubles (pkg/backoff, jittered) up to MaxEvery, and the
// first request found brings it back to Every. An idle component then
// reads dlq_retry_requests about once per MaxEvery instead of once per
// Every, and an operator's retry waits at most MaxEvery before it is taken:
// MaxEvery must stay well below the dlq-service's dlq.retry_timeout (20 s
// by default), which bounds how long the operator waits for the outcome.
// A MaxEvery of 0 (or below Every) keeps the pause at Every.
type RetryConfig struct {
	Every    time.Duration `mapstructure:"every" help:"how often the retry requests of the dlq-service are read while there are some (and the first pause after one)"`
	MaxEvery time.Duration `mapstructure:"max_every" help:"the longest pause the reads of retry requests back off to, doubling from every, while they find none; a retry waits at most this long before it is taken, so keep it well below the dlq-service's dlq.retry_timeout (0, or below every: no back-off)"`
	ClaimFor time.Duration `mapstructure:"claim_for" help:"how long a request taken by one replica is its own; a re-drive must end within half of it"`
}

// DefaultRetryConfig answers a retry within about a second while requests
// come, and within 4 s of an idle time: a fifth of the dlq-service's
// default dlq.retry_timeout (20 s), leaving the rest to the re-drive.
func DefaultRetryConfig() RetryConfig {
	return RetryConfig{Every: time.Second, MaxEvery: 4 * time.Second, ClaimFor: 2 * time.Minute}
}

// Validate checks every key.
func (c RetryConfig) Validate() error {
	var errs []error
	if c.Every <= 0 {
		errs = append(errs, config.Errorf("every", "must be positive, got %s", c.Every))
	}
	if c.MaxEvery < 0 {
		errs = append(errs, config.Errorf("max_every", "must not be negative, got %s", c.MaxEvery))
	}
	if c.ClaimFor < 2*time.Second {
		errs = append(errs, config.Errorf("claim_for", "must be at least 2s, got %s", c.ClaimFor))
	}
	return errors.Join(errs...)
}

// Redrive re-drives e's aggregate for req and settles it (Settle), holding
// the aggregate meanwhile. An error means the re-drive could not be done
// (the database); the request is then answered failed with it.
type Redrive func(ctx context.Context, req Request, e Entry) (Result, error)

// RequestStore is what a Retrier reads and writes (Store, Memory).
type RequestStore interface {
	parkedReader
	resultReader
	Get(ctx context.Context, id gocql.UUID) (Entry, bool, error)
	Pending(ctx context.Context, component string) ([]Request, error)
	Claim(ctx context.Context, req Request, owner string, ttl time.Duration) (bool, error)
	Finish(ctx context.Context, res Result) error
	DeleteRequest(ctx context.Context, req Request) error
	Release(ctx context.Context, req Request, owner string) error
}

// Retrier serves one component's retry requests.
type Retrier struct {
	cfg       RetryConfig
	store     RequestStore
	component string
	owner     string
	redrive   Redrive
	logger    zerolog.Logger
	outcomes  *prometheus.CounterVec
}

// NewRetrierOn builds the retrier of component over store. Its counter
// orderstream_dlq_redrives_total{component, action, status} is registered
// with reg.
func NewRetrierOn(cfg RetryConfig, store RequestStore, component string, redrive Redrive, logger zerolog.Logger, reg prometheus.Registerer) (*Retrier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("retrier: %w", err)
	}
	host, _ := os.Hostname()
	r := &Retrier{
		cfg: cfg, store: store, component: component, redrive: redrive,
		owner:  fmt.Sprintf("%s/%d/%s", host, os.Getpid(), gocql.TimeUUID()),
		logger: logger.With().Str("component", component).Logger(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "dlq", Name: "redrives_total",
			Help:        "Retry requests of the dlq-service this component carried out, by action and outcome (succeeded, failed, gone, error).",
			ConstLabels: prometheus.Labels{"component": component}}, []string{"action", "status"}),
	}
	// Every action and outcome from the start, so that the series (and the
	// dashboards' panels) exist before the first request.
	for _, a := range []Action{ActionRetry, ActionSkip} {
		for _, s := range []string{StatusSucceeded, StatusFailed, StatusGone, "error"} {
			r.outcomes.WithLabelValues(string(a), s)
		}
	}
	if reg != nil {
		if err := reg.Register(r.outcomes); err != nil {
			return nil, fmt.Errorf("retrier: registering metrics: %w", err)
		}
	}
	return r, nil
}

// Every is how often Poll should run while there are requests.
func (r *Retrier) Every() time.Duration { return r.cfg.Every }

// Poll carries out the pending requests of the component that no replica
// has taken, one at a time. Failures are logged and left for the next
// Poll: it returns an error only when ctx ended.
func (r *Retrier) Poll(ctx context.Context) error {
	_, err := r.PollPending(ctx)
	return err
}

// PollPending is Poll, and also returns how many requests it found pending,
// taken by a replica or not (0 when they could not be read): its caller
// polls at Every while there are some and backs off towards MaxEvery while
// there are none (pkg/redrive).
func (r *Retrier) PollPending(ctx context.Context) (int, error) {
	reqs, err := r.store.Pending(ctx, r.component)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		r.logger.Warn().Err(err).Msg("reading retry requests")
		return 0, nil
	}
	for _, req := range reqs {
		if ctx.Err() != nil {
			return len(reqs), ctx.Err()
		}
		if req.ClaimedBy != "" {
			continue
		}
		taken, err := r.store.Claim(ctx, req, r.owner, r.cfg.ClaimFor)
		if err != nil {
			r.logger.Warn().Err(err).Str("request_id", req.ID.String()).Msg("taking a retry request")
			continue
		}
		if taken {
			r.serve(ctx, req)
		}
	}
	return len(reqs), ctx.Err()
}

// Claim takes req for owner for ttl unless another owner has it: the
// claim's TTL frees it for another replica should this one die meanwhile.
func (s *Store) Claim(ctx context.Context, req Request, owner string, ttl time.Duration) (bool, error) {
	applied, err := s.query(`UPDATE dlq_retry_requests USING TTL ? SET claimed_by = ? WHERE component = ? AND aggregate_id = ? IF request_id = ? AND claimed_by = null`,
		int(ttl.Seconds()), owner, req.Component, req.AggregateID, req.ID).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("taking retry request %s: %w", req.ID, err)
	}
	return applied, nil
}

func (r *Retrier) serve(parent context.Context, req Request) {
	ctx, cancel := context.WithTimeout(parent, r.cfg.ClaimFor/2)
	defer cancel()
	log := r.logger.With().Str("request_id", req.ID.String()).Str("aggregate_id", req.AggregateID.String()).Str("dlq_id", req.DLQID.String()).
		Str("action", string(req.Action)).Str("requested_by", req.RequestedBy).Logger()
	start := time.Now()
	if _, done, err := r.store.ReadResult(ctx, req.ID); err == nil && done {
		// Done by a taker whose deletion of the request was lost: its
		// outcome stands.
		if err := r.store.DeleteRequest(ctx, req); err != nil {
			log.Warn().Err(err).Msg("deleting a retry request already done")
		}
		return
	}
	var e Entry
	res, err := r.run(ctx, req, &e)
	if e.Sequence > 0 {
		// The dead letter's event, so that a grep of its id or sequence
		// finds the re-drive next to the component's lines about it.
		log = log.With().Int64(logging.FieldSequence, e.Sequence).Str(logging.FieldEventID, e.EventID.String()).Str("event_type", e.EventType).Logger()
	}
	if err != nil {
		if parent.Err() != nil {
			// Shutting down: free the request for whoever runs next.
			r.release(req)
			return
		}
		// The error may name hosts and queries: it goes to the log only.
		res = Result{Status: StatusFailed, Detail: r.component + " could not carry out the request (the database did not answer); its log has the error, and the request can be retried", HeadDLQID: req.DLQID}
		r.outcomes.WithLabelValues(string(req.Action), "error").Inc()
		log.Error().Err(err).Msg("re-driving a dead letter's aggregate")
	} else {
		r.outcomes.WithLabelValues(string(req.Action), res.Status).Inc()
	}
	res.RequestID, res.Component, res.AggregateID, res.DLQID, res.Action, res.RequestedBy = req.ID, req.Component, req.AggregateID, req.DLQID, req.Action, req.RequestedBy
	res.FinishedAt = time.Now().UTC()
	if err := r.store.Finish(ctx, res); err != nil {
		log.Warn().Err(err).Msg("recording the outcome of a retry request; it is done again once its claim expires")
		return
	}
	ev := log.Info()
	if res.Status == StatusFailed {
		ev = log.Warn()
	}
	ev.Str("status", res.Status).Str("detail", res.Detail).Int64("applied", res.Applied).Int64("progress", res.Progress).Dur("took", time.Since(start)).
		Msg("retry request done")
}

// run carries out req; e is set to the dead letter it concerns once known.
func (r *Retrier) run(ctx context.Context, req Request, out *Entry) (Result, error) {
	e, found, err := r.store.Get(ctx, req.DLQID)
	if err != nil {
		return Result{}, err
	}
	if !found {
		// Gone, unless its aggregate is still parked behind it (a purge
		// that deleted it without the component): re-drive from the park.
		p, parked, err := r.store.ReadParked(ctx, req.Component, req.AggregateID)
		if err != nil {
			return Result{}, err
		}
		if !parked || p.DLQID != req.DLQID {
			return Result{Status: StatusGone, Detail: "the dead letter no longer exists (resolved by an earlier request or purged); nothing was done"}, nil
		}
		e = Entry{ID: req.DLQID, Component: req.Component, AggregateID: req.AggregateID, AggregateType: p.AggregateType, Sequence: p.Sequence, ParksAggregate: true}
	}
	*out = e
	if e.Component != req.Component || e.AggregateID != req.AggregateID || !e.ParksAggregate {
		return Result{Status: StatusFailed, Detail: fmt.Sprintf("dead letter %s is not an event of %s that %s parks; nothing was done", e.ID, req.AggregateID, req.Component), HeadDLQID: e.ID}, nil
	}
	return r.redrive(ctx, req, e)
}

// Finish records the outcome of a request and deletes the request.
func (s *Store) Finish(ctx context.Context, res Result) error {
	var head any
	if res.HeadDLQID != (gocql.UUID{}) {
		head = res.HeadDLQID
	}
	if err := s.query(`INSERT INTO dlq_retry_results (request_id, component, aggregate_id, dlq_id, action, requested_by, status, detail, applied, progress, head, head_dlq_id, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		res.RequestID, res.Component, res.AggregateID, res.DLQID, string(res.Action), res.RequestedBy, res.Status, res.Detail, res.Applied, res.Progress, res.Head, head, res.FinishedAt).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("writing the outcome of retry request %s: %w", res.RequestID, err)
	}
	return s.DeleteRequest(ctx, Request{Component: res.Component, AggregateID: res.AggregateID, ID: res.RequestID})
}

// DeleteRequest deletes a done request. IF request_id: a request taken
// again after this replica's claim expired, done and followed by a new
// one, must not lose the new one.
func (s *Store) DeleteRequest(ctx context.Context, req Request) error {
	var err error
	for range 3 {
		_, err = s.query(`DELETE FROM dlq_retry_requests WHERE component = ? AND aggregate_id = ? IF request_id = ?`, req.Component, req.AggregateID, req.ID).
			WithContext(ctx).MapScanCAS(map[string]any{})
		if err == nil || !cql.WriteUnavailable(err) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("deleting retry request %s: %w", req.ID, err)
	}
	return nil
}

// Release frees a request taken by owner.
func (s *Store) Release(ctx context.Context, req Request, owner string) error {
	_, err := s.query(`UPDATE dlq_retry_requests SET claimed_by = null WHERE component = ? AND aggregate_id = ? IF claimed_by = ?`, req.Component, req.AggregateID, owner).
		WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return fmt.Errorf("releasing retry request %s: %w", req.ID, err)
	}
	return nil
}

// release frees a taken request (best effort, at shutdown).
func (r *Retrier) release(req Request) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req.Component = r.component
	if err := r.store.Release(ctx, req, r.owner); err != nil {
		r.logger.Debug().Err(err).Msg("releasing a retry request at shutdown; it is taken again once its claim expires")
	}
}
