// Package relay turns committed events into broker records, in sequence
// order per aggregate, never losing one (DESIGN.md, "The relay").
//
// For each aggregate whose current_sequence is ahead of its
// published_sequence the relay reads the unpublished events from
// event_store, publishes them in order with an idempotent producer
// (acks=all), and only then records the new published_sequence. A crash
// between the broker's acknowledgement and that record can publish an event
// twice; consumers drop duplicates by (aggregate id, sequence). Nothing can
// be skipped: the static columns say what is left to publish.
//
// This package is the publisher only: the worker pool (one worker per
// aggregate hash), ordered publishing through the circuit breaker with
// backoff, partial flushes that record how far they got, and the parking
// of poison events (pkg/redrive). Sources tell it what to publish, each
// run as Run(ctx, notify): the scan source (scansource: token-range scans
// of the static columns, for every CQL database and the reconcile after
// ScyllaDB's CDC TTL) and the ScyllaDB CDC source (cdcsource).
package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/redrive"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config tunes the relay.
type Config struct {
	// Config tunes the scan source (relay/scansource), under the relay's
	// keys (scan_interval, scan_ranges, …).
	scansource.Config `mapstructure:",squash"`
	Workers           int           `mapstructure:"workers" help:"aggregates published in parallel (one aggregate is always published by one worker)"`
	MaxInFlight       int           `mapstructure:"max_in_flight" help:"records sent and not yet acknowledged, at most, over all workers (workers read the next events from the database meanwhile)"`
	MaxAttempts       int           `mapstructure:"max_attempts" help:"publish attempts of one aggregate's events before giving up until the next scan"`
	InitialBackoff    time.Duration `mapstructure:"initial_backoff" help:"first pause between publish attempts"`
	MaxBackoff        time.Duration `mapstructure:"max_backoff" help:"longest pause between publish attempts"`
	BreakerFailures   uint32        `mapstructure:"breaker_failures" help:"consecutive producer failures that open the circuit breaker"`
	BreakerOpenFor    time.Duration `mapstructure:"breaker_open_for" help:"how long the breaker stays open before a trial publish"`
	MarkEvery         int           `mapstructure:"mark_every" help:"events of one aggregate published between two records of published_sequence"`
	// Topics names the topics (key topic_prefix): the prefix is defined
	// once, in the record contract, for the relay and the projectors.
	record.Topics `mapstructure:",squash"`
	// Retry is how the relay serves the dlq-service's retry requests
	// (retry.go).
	Retry deadletter.RetryConfig `mapstructure:"retry"`
}

// DefaultConfig favours latency on a small cluster.
func DefaultConfig() Config {
	return Config{
		Config: scansource.DefaultConfig(), Workers: 32, MaxInFlight: 16,
		MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
		BreakerFailures: 5, BreakerOpenFor: 5 * time.Second, MarkEvery: 500, Topics: record.DefaultTopics(),
		Retry: deadletter.DefaultRetryConfig(),
	}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			errs = append(errs, config.Errorf(key, format, args...))
		}
	}
	check(c.Workers >= 1 && c.Workers <= 1024, "workers", "must be 1..1024, got %d", c.Workers)
	check(c.MaxInFlight >= 1 && c.MaxInFlight <= c.Workers, "max_in_flight", "must be 1..workers (%d), got %d", c.Workers, c.MaxInFlight)
	check(c.MaxAttempts >= 1, "max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	check(c.InitialBackoff > 0, "initial_backoff", "must be positive, got %s", c.InitialBackoff)
	check(c.MaxBackoff >= c.InitialBackoff, "max_backoff", "must be at least initial_backoff, got %s", c.MaxBackoff)
	check(c.BreakerFailures >= 1, "breaker_failures", "must be at least 1, got %d", c.BreakerFailures)
	check(c.BreakerOpenFor > 0, "breaker_open_for", "must be positive, got %s", c.BreakerOpenFor)
	check(c.MarkEvery >= 1, "mark_every", "must be at least 1, got %d", c.MarkEvery)
	return errors.Join(append(errs, c.Config.Validate(), c.Topics.Validate(), config.Nest("retry", c.Retry.Validate()))...)
}

// Producer is the part of sarama's SyncProducer the relay uses.
type Producer interface {
	SendMessage(msg *sarama.ProducerMessage) (partition int32, offset int64, err error)
}

// Store is what the relay needs of the event store: the heads its scans
// read (token range by token range, or the recent commits through the
// index on updated_at), one aggregate's head and events to publish, and
// the published mark it records. *eventstore.Store and its in-memory twin
// (eventstore/memstore) satisfy it.
type Store interface {
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
	CheckRecent(ctx context.Context) error
	RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error
	Head(ctx context.Context, id gocql.UUID) (eventstore.Head, error)
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error
	MarkPublished(ctx context.Context, id gocql.UUID, seq int64) error
}

// Relay publishes the unpublished events of aggregates.
type Relay struct {
	cfg       Config
	session   *gocql.Session
	store     Store
	upcasters *eventstore.Upcasters
	producer  Producer
	inFlight  chan struct{} // a slot per record awaiting acknowledgement
	breaker   *gobreaker.CircuitBreaker[struct{}]
	logger    zerolog.Logger
	tracer    trace.Tracer
	m         *relayMetrics

	// held are aggregates whose publishing failed, skipped by the scans
	// until their time comes, with a backoff that doubles per failure, so
	// that one poison event neither floods the log nor slows the scans.
	// (Dead-lettering and parking replace this for undecodable events.)
	heldMu sync.Mutex
	held   map[gocql.UUID]hold

	// queues are the workers' inboxes, one worker per aggregate hash, set
	// while Publish runs; running is closed while they are set, and
	// replaced by an open channel when Publish ends.
	queuesMu sync.RWMutex
	queues   []chan pending
	running  chan struct{}
	maxLag   atomic.Int64 // largest commit→acknowledge delay since the last scan, ns

	// parking dead-letters, keeps the parked set and serves the
	// dlq-service's retry requests (retry.go) as the redrive worker.
	parking *redrive.Parking
	dlq     redrive.DeadLetters
}

type hold struct {
	until    time.Time
	failures int
}

type relayMetrics struct {
	published    prometheus.Counter
	retries      prometheus.Counter
	failures     *prometheus.CounterVec
	publishDur   prometheus.Histogram
	breakerState prometheus.Gauge
	deadLettered prometheus.Counter
	parked       prometheus.Gauge
	delay        prometheus.Histogram
	lagSeconds   prometheus.Gauge
}

// New builds a relay. The producer must be idempotent with acks=all
// (record.NewProducer builds one).
func New(cfg Config, session *gocql.Session, store Store, producer Producer, logger zerolog.Logger, reg prometheus.Registerer, opts ...Option) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	m := &relayMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "events_published_total",
			Help: "Events published to the broker and acknowledged."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "retries_total",
			Help: "Publish attempts retried after a failure."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "publish_failures_total",
			Help: "Publish attempts that failed, by reason."}, []string{"reason"}),
		publishDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "publish_duration_seconds",
			Help: "Duration of one producer call (one record, acknowledged).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "circuit_breaker_state",
			Help: "State of the producer's circuit breaker: 0 closed, 1 half-open, 2 open.", ConstLabels: prometheus.Labels{"component": "relay"}}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "dead_lettered_total",
			Help: "Events written to the dead letter queue (each parks its aggregate)."}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "parked_aggregates",
			Help: "Aggregates whose publishing waits behind a dead-lettered event."}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "event_delay_seconds",
			Help: "Time from an event's commit to the broker's acknowledgement of its record.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		lagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "lag_seconds",
			Help: "Age of the oldest event the relay published during the last scan period, at the time it was acknowledged."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.published, m.retries, m.failures, m.publishDur, m.breakerState, m.deadLettered, m.parked, m.delay, m.lagSeconds} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("relay: registering metrics: %w", err)
			}
		}
	}
	r := &Relay{cfg: cfg, session: session, store: store, upcasters: eventcodec.NewUpcasters(), producer: producer, inFlight: make(chan struct{}, cfg.MaxInFlight), logger: logger,
		tracer: noop.NewTracerProvider().Tracer(""), m: m, held: map[gocql.UUID]hold{}, running: make(chan struct{}), dlq: deadletter.NewStore(session, "")}
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.parking, err = redrive.New(Component, r.dlq, cfg.Retry, r.redrive, logger, reg, redrive.Options{
		Metrics:      redrive.Metrics{Parked: m.parked, DeadLettered: m.deadLettered},
		RawComponent: Component + "/cdc",
	}); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	r.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "relay-producer",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		// A record the broker refuses for its own sake says nothing about
		// the broker's health: it must not open the breaker for everyone.
		IsExcluded: func(err error) bool { return unpublishable(err) != "" },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breakerState.Set(float64(to))
			logger.Warn().Str("from", from.String()).Str("to", to.String()).Msg("producer circuit breaker changed state")
		},
	})
	return r, nil
}

// pending is an aggregate with events to publish.
type pending struct {
	id            gocql.UUID
	aggregateType string
	current       int64
	published     int64
	done          func() // set by a scan: called once the aggregate is handled
	run           func() // set by a re-drive (retry.go): run on the aggregate's worker instead of publishing
}

// Source is where the relay learns of aggregates to publish: the scan
// source (relay/scansource) or ScyllaDB's CDC log (relay/cdcsource). Every
// source runs with the one shape Run(ctx, notify), notify being the
// publisher's Notify.
type Source interface {
	Run(ctx context.Context, notify Notify) error
}

// Notify hands the publisher an aggregate with events to publish; done,
// when not nil, is called once it was handled (Relay.Notify). It is an
// alias of the sources' own (scansource.Notify, cdcsource.Notify), so that
// every source's Run has the one signature.
type Notify = func(ctx context.Context, aggregateID gocql.UUID, done func()) error

// Workers are the relay's own parts, each to run as a supervised worker of
// its own: the publisher (the worker pool every source hands aggregates
// to) and the redrive worker serving the dlq-service's retry requests. A
// replica runs them, and its sources (SourceWorker), only while it holds
// the relay's lease.
func (r *Relay) Workers() []supervise.Worker {
	return []supervise.Worker{
		{Name: "publisher", Run: r.Publish},
		r.parking.Worker("redrive"),
	}
}

// SourceWorker is src notifying this relay, as a supervised worker called
// name.
func (r *Relay) SourceWorker(name string, src Source) supervise.Worker {
	return supervise.Worker{Name: name, Run: func(ctx context.Context) error { return src.Run(ctx, r.Notify) }}
}

// Run runs the relay's workers and the given sources together until ctx
// is done or one fails, for tests and tools that run a relay without a
// supervisor.
func (r *Relay) Run(ctx context.Context, sources ...Source) error {
	workers := r.Workers()
	for i, src := range sources {
		workers = append(workers, r.SourceWorker(fmt.Sprintf("source %d", i+1), src))
	}
	return supervise.RunAll(ctx, workers...)
}

// ScanHooks are what the scan source (relay/scansource) tells the relay
// around a full scan: before it, the parked set is reloaded (an aggregate
// the dlq-service unparked flows again at once); after it,
// orderstream_relay_lag_seconds takes the oldest delay published since the
// previous one.
func (r *Relay) ScanHooks() scansource.Hooks {
	return scansource.Hooks{
		BeforeFullScan: r.loadParked,
		AfterFullScan: func(int64) {
			r.m.lagSeconds.Set(time.Duration(r.maxLag.Swap(0)).Seconds())
		},
	}
}

// Publish runs the worker pool until ctx is done: one worker per aggregate
// hash publishes what the sources (through Notify) and re-drives hand it. A
// failure to publish leaves the aggregate for the next scan.
func (r *Relay) Publish(ctx context.Context) error {
	queues := make([]chan pending, r.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan pending, 64)
		wg.Go(func() {
			for p := range queues[i] {
				if p.run != nil {
					p.run()
					continue
				}
				r.publishAggregate(ctx, p)
				if p.done != nil {
					p.done()
				}
			}
		})
	}
	r.queuesMu.Lock()
	r.queues = queues
	close(r.running)
	r.queuesMu.Unlock()
	<-ctx.Done()
	r.queuesMu.Lock()
	r.queues = nil
	r.running = make(chan struct{})
	for _, q := range queues {
		close(q)
	}
	r.queuesMu.Unlock()
	wg.Wait()
	return nil
}

// enqueue hands p to its aggregate's worker, waiting while the publisher
// is not running (starting, or restarting after a failure) and while the
// worker's inbox is full.
func (r *Relay) enqueue(ctx context.Context, p pending) error {
	for {
		r.queuesMu.RLock()
		if r.queues != nil {
			defer r.queuesMu.RUnlock()
			select {
			case r.queues[r.worker(p.id)] <- p:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		running := r.running
		r.queuesMu.RUnlock()
		select {
		case <-running:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func pendingOf(h eventstore.Head) pending {
	return pending{id: h.AggregateID, aggregateType: h.AggregateType, current: h.Current, published: h.Published}
}

// Notify tells the publisher that an aggregate has new events (a source
// found them), so that its worker publishes them; done, when not nil, is
// called once the aggregate was handled. A parked aggregate, or one held
// after failures, is left at once (done called). Notify blocks while the
// aggregate's worker is busy and while the publisher is not running.
func (r *Relay) Notify(ctx context.Context, id gocql.UUID, done func()) error {
	if r.parking.Has(id) || r.isHeld(id) {
		if done != nil {
			done()
		}
		return nil
	}
	return r.enqueue(ctx, pending{id: id, done: done})
}

// worker picks the one worker that owns an aggregate, so that its events
// are never published by two goroutines at once.
func (r *Relay) worker(id gocql.UUID) int {
	h := fnv.New32a()
	_, _ = h.Write(id[:])
	return int(h.Sum32() % uint32(r.cfg.Workers))
}

// refresh reads an aggregate's static columns: the scan's copy may be
// stale by the time a worker gets to it (a notification may have published
// meanwhile), and publishing from a stale mark would repeat records.
func (r *Relay) refresh(ctx context.Context, p pending) (pending, error) {
	h, err := r.store.Head(ctx, p.id)
	if err != nil {
		return p, err
	}
	fresh := pendingOf(h)
	fresh.done, fresh.run = p.done, p.run
	return fresh, nil
}

// publishAggregate publishes the events after p.published in order, with
// bounded retries, and records how far it got.
func (r *Relay) publishAggregate(ctx context.Context, p pending) {
	log := r.logger.With().Str("aggregate_id", p.id.String()).Logger()
	if r.parking.Has(p.id) || r.isHeld(p.id) {
		return
	}
	p, err := r.refresh(ctx, p)
	if err != nil {
		log.Warn().Err(err).Msg("reading the aggregate's marks")
		return
	}
	if p.current <= p.published {
		return
	}
	err = r.publish(ctx, p)
	if ctx.Err() != nil {
		return
	}
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if err == nil || errors.Is(err, errPoison) {
		delete(r.held, p.id)
		return
	}
	h := r.held[p.id]
	h.failures++
	h.until = time.Now().Add(r.holdPolicy().Nominal(h.failures))
	r.held[p.id] = h
	if h.failures&(h.failures-1) == 0 { // log the 1st, 2nd, 4th, 8th … failure
		log.Warn().Err(err).Int("failures", h.failures).Time("retry_after", h.until).Int64("published", p.published).Int64("current", p.current).
			Msg("aggregate not fully published; it is retried later")
	}
}

// publish publishes p's events after p.published through p.current, in
// order, and records how far it got. A poison event is dead-lettered and
// parks the aggregate; the error then wraps errPoison.
func (r *Relay) publish(ctx context.Context, p pending) error {
	var (
		batch  []*sarama.ProducerMessage
		events []eventstore.Event // the stored events of batch, for the dead letter
	)
	last := p.published
	// flush sends the batch one record at a time, each only after the
	// broker acknowledged the one before: a batch sent at once can, when a
	// broker fails mid-way, land its later records before an earlier one
	// that is retried (seen when Kafka restarts under load). It records how
	// far it got even when it stops part-way, so a retry resumes there. A
	// record that can never be published (failure.go) is dead-lettered
	// there and parks the aggregate behind it.
	flush := func() error {
		base := last - int64(len(batch)) // the batch holds base+1 … last
		acked := base
		var (
			sendErr error
			failed  eventstore.Event
		)
		for i, msg := range batch {
			sctx, span := r.startSend(ctx, events[i], msg)
			sendErr = r.send(sctx, msg)
			endSend(span, msg, sendErr)
			if sendErr != nil {
				failed = events[i]
				break
			}
			if r.logger.GetLevel() <= zerolog.DebugLevel { // no sub-logger per event otherwise
				l := logging.ForEvent(sctx, r.logger, events[i])
				l.Debug().Str("topic", msg.Topic).Int32("partition", msg.Partition).Int64("offset", msg.Offset).Str("event_type", events[i].Type).Msg("event published")
			}
			acked++
			d := time.Since(msg.Timestamp)
			metrics.Observe(sctx, r.m.delay, d.Seconds())
			for old := r.maxLag.Load(); int64(d) > old && !r.maxLag.CompareAndSwap(old, int64(d)); old = r.maxLag.Load() {
			}
			r.m.published.Inc()
		}
		batch, events = batch[:0], events[:0]
		if acked > base {
			if err := r.markPublished(ctx, p.id, acked); err != nil {
				return errors.Join(sendErr, err)
			}
		}
		var unpub *unpublishableError
		if errors.As(sendErr, &unpub) {
			if derr := r.deadLetter(ctx, failed, unpub.reason, sendErr); derr != nil {
				return errors.Join(sendErr, derr)
			}
			return fmt.Errorf("%w: %v", errPoison, sendErr)
		}
		return sendErr
	}
	err := r.store.Events(ctx, p.id, p.published, p.current, func(e eventstore.Event) error {
		if e.Sequence != last+1 {
			return fmt.Errorf("event %d follows %d: the stream has a gap", e.Sequence, last)
		}
		up, err := r.upcasters.Upcast(e)
		var msg *sarama.ProducerMessage
		if err == nil {
			msg, err = record.Encode(up, r.cfg.TopicPrefix)
		}
		if err != nil {
			// Publish what precedes the poison event, then park behind it.
			if ferr := flush(); ferr != nil {
				return ferr
			}
			if derr := r.deadLetter(ctx, e, "poison", err); derr != nil {
				return derr
			}
			return fmt.Errorf("%w: %v", errPoison, err)
		}
		batch = append(batch, msg)
		events = append(events, e)
		last = e.Sequence
		if len(batch) >= r.cfg.MarkEvery {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

// holdPolicy is how long an aggregate whose publishing failed is held
// back: twice initial_backoff after its first failure, doubling per
// failure, at most a minute. No jitter: the scans, not a timer, pick it up
// again.
func (r *Relay) holdPolicy() backoff.Policy {
	return backoff.Policy{Initial: 2 * r.cfg.InitialBackoff, Max: time.Minute}
}

func (r *Relay) isHeld(id gocql.UUID) bool {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	h, ok := r.held[id]
	return ok && time.Now().Before(h.until)
}

// send publishes one record through the circuit breaker with exponential
// backoff and jitter. While the breaker is open it waits instead of
// spending attempts.
func (r *Relay) send(ctx context.Context, msg *sarama.ProducerMessage) error {
	bo := backoff.Policy{Initial: r.cfg.InitialBackoff, Max: r.cfg.MaxBackoff}.Start()
	refused := 0 // attempts in a row refused for a reason retrying cannot fix
	for attempt := 1; ; attempt++ {
		select {
		case r.inFlight <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		start := time.Now()
		_, err := r.breaker.Execute(func() (struct{}, error) {
			_, _, err := r.producer.SendMessage(msg)
			return struct{}{}, err
		})
		<-r.inFlight
		if err == nil {
			metrics.Observe(ctx, r.m.publishDur, time.Since(start).Seconds())
			return nil
		}
		reason := unpublishable(err)
		switch {
		case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
			r.m.failures.WithLabelValues("breaker_open").Inc()
			attempt-- // an open breaker spends no attempt
		case reason != "":
			r.m.failures.WithLabelValues(reason).Inc()
			refused++
		default:
			r.m.failures.WithLabelValues("producer").Inc()
			refused = 0
		}
		if attempt >= r.cfg.MaxAttempts {
			err = fmt.Errorf("publishing after %d attempts: %w", attempt, err)
			// Dead-letter only a record refused for its own sake on every
			// attempt: the broker judges a whole batch, so a record that
			// shared one with an oversize neighbour once is not condemned.
			if reason != "" && refused == attempt {
				return &unpublishableError{reason: reason, err: err}
			}
			return err
		}
		r.m.retries.Inc()
		if err := bo.Wait(ctx); err != nil {
			return err
		}
	}
}

// markPublished records the relay's mark. Only the relay writes it, so a
// plain write is enough; it never moves backwards because the relay only
// publishes forwards from the mark it read.
func (r *Relay) markPublished(ctx context.Context, id gocql.UUID, seq int64) error {
	return r.store.MarkPublished(ctx, id, seq)
}
