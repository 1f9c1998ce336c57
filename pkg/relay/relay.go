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
// This package holds the publishing core and the scan source (token-range
// scans of the static columns), which serves Apache Cassandra and re-syncs
// after ScyllaDB's CDC TTL. The ScyllaDB CDC source is in cdcsource.
package relay

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
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
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// Config tunes the relay.
type Config struct {
	ScanInterval    time.Duration `mapstructure:"scan_interval" help:"pause between two full scans of the static columns when there is no index on updated_at (ScyllaDB, or a Cassandra without SAI)"`
	RecentInterval  time.Duration `mapstructure:"recent_interval" help:"pause between two reads of the recently committed aggregates (the index on updated_at, Apache Cassandra 5)"`
	RecentLookback  time.Duration `mapstructure:"recent_lookback" help:"how far before the previous read of recent commits the next one looks (covers commit latency and clock skew between command-service hosts and the relay)"`
	ReconcileEvery  time.Duration `mapstructure:"reconcile_every" help:"full scan interval while recent commits are read through the index: the reconcile that catches whatever the recent reads missed"`
	ScanRanges      int           `mapstructure:"scan_ranges" help:"token ranges one scan is split into"`
	ScanParallelism int           `mapstructure:"scan_parallelism" help:"token ranges read at once during a scan"`
	Workers         int           `mapstructure:"workers" help:"aggregates published in parallel (one aggregate is always published by one worker)"`
	MaxInFlight     int           `mapstructure:"max_in_flight" help:"records sent and not yet acknowledged, at most, over all workers (workers read the next events from the database meanwhile)"`
	MaxAttempts     int           `mapstructure:"max_attempts" help:"publish attempts of one aggregate's events before giving up until the next scan"`
	InitialBackoff  time.Duration `mapstructure:"initial_backoff" help:"first pause between publish attempts"`
	MaxBackoff      time.Duration `mapstructure:"max_backoff" help:"longest pause between publish attempts"`
	BreakerFailures uint32        `mapstructure:"breaker_failures" help:"consecutive producer failures that open the circuit breaker"`
	BreakerOpenFor  time.Duration `mapstructure:"breaker_open_for" help:"how long the breaker stays open before a trial publish"`
	MarkEvery       int           `mapstructure:"mark_every" help:"events of one aggregate published between two records of published_sequence"`
	TopicPrefix     string        `mapstructure:"topic_prefix" help:"topics are <topic_prefix>.orders.v1 and <topic_prefix>.customers.v1"`
	// Retry is how the relay serves the dlq-service's retry requests
	// (retry.go).
	Retry deadletter.RetryConfig `mapstructure:"retry"`
}

// DefaultConfig favours latency on a small cluster.
func DefaultConfig() Config {
	return Config{
		ScanInterval: 50 * time.Millisecond, RecentInterval: 10 * time.Millisecond, RecentLookback: 500 * time.Millisecond, ReconcileEvery: 5 * time.Second, ScanRanges: 16, ScanParallelism: 4, Workers: 32, MaxInFlight: 16,
		MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
		BreakerFailures: 5, BreakerOpenFor: 5 * time.Second, MarkEvery: 500, TopicPrefix: DefaultTopicPrefix,
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
	check(c.ScanInterval > 0, "scan_interval", "must be positive, got %s", c.ScanInterval)
	check(c.RecentInterval > 0, "recent_interval", "must be positive, got %s", c.RecentInterval)
	check(c.RecentLookback > 0, "recent_lookback", "must be positive, got %s", c.RecentLookback)
	check(c.ReconcileEvery > 0, "reconcile_every", "must be positive, got %s", c.ReconcileEvery)
	check(c.ScanRanges >= 1 && c.ScanRanges <= 4096, "scan_ranges", "must be 1..4096, got %d", c.ScanRanges)
	check(c.ScanParallelism >= 1 && c.ScanParallelism <= 256, "scan_parallelism", "must be 1..256, got %d", c.ScanParallelism)
	check(c.Workers >= 1 && c.Workers <= 1024, "workers", "must be 1..1024, got %d", c.Workers)
	check(c.MaxInFlight >= 1 && c.MaxInFlight <= c.Workers, "max_in_flight", "must be 1..workers (%d), got %d", c.Workers, c.MaxInFlight)
	check(c.MaxAttempts >= 1, "max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	check(c.InitialBackoff > 0, "initial_backoff", "must be positive, got %s", c.InitialBackoff)
	check(c.MaxBackoff >= c.InitialBackoff, "max_backoff", "must be at least initial_backoff, got %s", c.MaxBackoff)
	check(c.BreakerFailures >= 1, "breaker_failures", "must be at least 1, got %d", c.BreakerFailures)
	check(c.BreakerOpenFor > 0, "breaker_open_for", "must be positive, got %s", c.BreakerOpenFor)
	check(c.MarkEvery >= 1, "mark_every", "must be at least 1, got %d", c.MarkEvery)
	check(c.TopicPrefix != "", "topic_prefix", "must not be empty")
	return errors.Join(append(errs, config.Nest("retry", c.Retry.Validate()))...)
}

// Producer is the part of sarama's SyncProducer the relay uses.
type Producer interface {
	SendMessage(msg *sarama.ProducerMessage) (partition int32, offset int64, err error)
}

// Relay publishes the unpublished events of aggregates.
type Relay struct {
	cfg       Config
	session   *gocql.Session
	store     *eventstore.Store
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
	// while Run runs (started is closed the first time).
	queuesMu sync.RWMutex
	queues   []chan pending
	started  chan struct{}
	once     sync.Once
	parked   deadletter.Set
	maxLag   atomic.Int64 // largest commit→acknowledge delay since the last scan, ns
	retrier  *deadletter.Retrier
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
	lag          prometheus.Gauge
	scans        prometheus.Counter
	scanDur      prometheus.Histogram
	recentScans  prometheus.Counter
	recentDur    prometheus.Histogram
	deadLettered prometheus.Counter
	parked       prometheus.Gauge
	delay        prometheus.Histogram
	lagSeconds   prometheus.Gauge
}

// New builds a relay. The producer must be idempotent with acks=all
// (NewProducer builds one).
func New(cfg Config, session *gocql.Session, store *eventstore.Store, producer Producer, logger zerolog.Logger, reg prometheus.Registerer, opts ...Option) (*Relay, error) {
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
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "unpublished_events",
			Help: "Events committed but not yet published, as of the last completed scan."}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "scans_total",
			Help: "Completed scans of the static columns."}),
		scanDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "scan_duration_seconds",
			Help: "Duration of one scan including the publishing it started.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		recentScans: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "recent_scans_total",
			Help: "Completed reads of recently committed aggregates (through the index on updated_at)."}),
		recentDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "recent_scan_duration_seconds",
			Help: "Duration of one read of recent commits including the publishing it started.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
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
		for _, c := range []prometheus.Collector{m.published, m.retries, m.failures, m.publishDur, m.breakerState, m.lag, m.scans, m.scanDur, m.recentScans, m.recentDur, m.deadLettered, m.parked, m.delay, m.lagSeconds} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("relay: registering metrics: %w", err)
			}
		}
	}
	r := &Relay{cfg: cfg, session: session, store: store, upcasters: eventcodec.NewUpcasters(), producer: producer, inFlight: make(chan struct{}, cfg.MaxInFlight), logger: logger,
		tracer: noop.NewTracerProvider().Tracer(""), m: m, held: map[gocql.UUID]hold{}, started: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.retrier, err = deadletter.NewRetrier(cfg.Retry, session, Component, r.redrive, logger, reg); err != nil {
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

// Run scans and publishes until ctx is done. A failure to reach the
// database ends Run with an error (its supervisor restarts it); a failure
// to publish leaves the aggregate for the next scan.
func (r *Relay) Run(ctx context.Context) error {
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
	r.queuesMu.Unlock()
	r.once.Do(func() { close(r.started) })
	defer func() {
		r.queuesMu.Lock()
		r.queues = nil
		for _, q := range queues {
			close(q)
		}
		r.queuesMu.Unlock()
		wg.Wait()
	}()
	stopRetries := r.serveRetries(ctx) // stops before the queues close
	defer stopRetries()

	// With the index on updated_at, recent commits are read every
	// RecentInterval while full scans reconcile every ReconcileEvery, side
	// by side (an aggregate found by both is published once: its worker
	// re-reads the marks first). Without the index, full scans run every
	// ScanInterval.
	indexed := r.hasRecentIndex(ctx)
	if !indexed {
		r.logger.Info().Dur("scan_interval", r.cfg.ScanInterval).Msg("no index on event_store.updated_at: full scans only")
		return r.loop(ctx, queues, r.cfg.ScanInterval, func(ctx context.Context, found func(pending)) error {
			return r.fullScan(ctx, found)
		})
	}
	r.logger.Info().Dur("recent_interval", r.cfg.RecentInterval).Dur("reconcile_every", r.cfg.ReconcileEvery).Msg("reading recent commits through the index on updated_at; full scans reconcile")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return r.loop(gctx, queues, r.cfg.ReconcileEvery, func(ctx context.Context, found func(pending)) error {
			return r.fullScan(ctx, found)
		})
	})
	g.Go(func() error {
		since := time.Now().Add(-r.cfg.RecentLookback)
		return r.loop(gctx, queues, r.cfg.RecentInterval, func(ctx context.Context, found func(pending)) error {
			start := time.Now()
			if err := r.scanRecent(ctx, since.Add(-r.cfg.RecentLookback), found); err != nil {
				return err
			}
			since = start
			r.m.recentScans.Inc()
			r.m.recentDur.Observe(time.Since(start).Seconds())
			return nil
		})
	})
	return g.Wait()
}

// loop runs one kind of scan until ctx ends, pausing between scans; each
// scan's aggregates are all handled before the next scan starts.
func (r *Relay) loop(ctx context.Context, queues []chan pending, pause time.Duration, scan func(context.Context, func(pending)) error) error {
	var inflight sync.WaitGroup
	for {
		err := scan(ctx, func(p pending) {
			inflight.Add(1)
			p.done = inflight.Done
			queues[r.worker(p.id)] <- p
		})
		inflight.Wait()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scanning event_store: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// fullScan scans every partition's static columns and records the backlog.
func (r *Relay) fullScan(ctx context.Context, found func(pending)) error {
	start := time.Now()
	backlog, err := r.scan(ctx, found)
	if err != nil {
		return err
	}
	r.m.lag.Set(float64(backlog))
	r.m.lagSeconds.Set(time.Duration(r.maxLag.Swap(0)).Seconds())
	r.m.scans.Inc()
	r.m.scanDur.Observe(time.Since(start).Seconds())
	return nil
}

// hasRecentIndex reports whether event_store.updated_at is indexed (the
// SAI index of schema v0003 on Apache Cassandra), by asking for it.
func (r *Relay) hasRecentIndex(ctx context.Context) bool {
	err := r.session.Query(`SELECT DISTINCT aggregate_id FROM event_store WHERE updated_at > ? LIMIT 1`, time.Now()).
		WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		r.logger.Debug().Err(err).Msg("the recent-commits query is not available")
	}
	return err == nil
}

// scanRecent hands to found the aggregates committed since the given time
// (by their static updated_at, through its index) with unpublished events.
func (r *Relay) scanRecent(ctx context.Context, since time.Time, found func(pending)) error {
	_, err := r.collect(r.session.Query(`SELECT DISTINCT aggregate_id, aggregate_type, current_sequence, published_sequence FROM event_store WHERE updated_at > ?`, since).
		WithContext(ctx), found)
	return err
}

// collect reads the static columns a scan query returns (aggregate_id,
// aggregate_type, current_sequence, published_sequence), hands each
// aggregate with unpublished events, unless parked or held, to found, and
// returns how many events were unpublished.
func (r *Relay) collect(q *gocql.Query, found func(pending)) (int64, error) {
	iter := q.Idempotent(true).PageSize(1000).Iter()
	var (
		p         pending
		published *int64
		backlog   int64
	)
	for iter.Scan(&p.id, &p.aggregateType, &p.current, &published) {
		p.published = 0
		if published != nil {
			p.published = *published
		}
		if p.current > p.published {
			backlog += p.current - p.published
			if !r.parked.Has(p.id) && !r.isHeld(p.id) {
				found(p)
			}
		}
		published = nil
	}
	return backlog, iter.Close()
}

// Notify tells the relay that an aggregate has new events (a source such as
// ScyllaDB's CDC log saw them commit), so that they are published without
// waiting for the next scan. It blocks while the aggregate's worker is busy.
func (r *Relay) Notify(ctx context.Context, id gocql.UUID) error {
	select {
	case <-r.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.queuesMu.RLock()
	defer r.queuesMu.RUnlock()
	if r.queues == nil {
		return errors.New("relay: not running")
	}
	select {
	case r.queues[r.worker(id)] <- pending{id: id}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
	var published *int64
	err := r.session.Query(`SELECT aggregate_type, current_sequence, published_sequence FROM event_store WHERE aggregate_id = ? LIMIT 1`, p.id).
		WithContext(ctx).Idempotent(true).Scan(&p.aggregateType, &p.current, &published)
	if errors.Is(err, gocql.ErrNotFound) {
		p.current = 0
		return p, nil
	}
	p.published = 0
	if published != nil {
		p.published = *published
	}
	return p, err
}

// scan reads the static columns of every partition, token range by token
// range (SELECT DISTINCT reads only partition keys and statics), and hands
// each aggregate with unpublished events to found. It returns how many
// events were unpublished.
func (r *Relay) scan(ctx context.Context, found func(pending)) (int64, error) {
	if err := r.loadParked(ctx); err != nil {
		return 0, err
	}
	var (
		backlog atomic.Int64
		ranges  = make(chan [2]int64, r.cfg.ScanRanges)
	)
	for _, rg := range cql.TokenRanges(r.cfg.ScanRanges) {
		ranges <- rg
	}
	close(ranges)
	g, ctx := errgroup.WithContext(ctx)
	for range r.cfg.ScanParallelism {
		g.Go(func() error {
			for rg := range ranges {
				n, err := r.collect(r.session.Query(`SELECT DISTINCT aggregate_id, aggregate_type, current_sequence, published_sequence FROM event_store WHERE token(aggregate_id) >= ? AND token(aggregate_id) <= ?`, rg[0], rg[1]).
					WithContext(ctx), found)
				backlog.Add(n)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return backlog.Load(), err
}

// publishAggregate publishes the events after p.published in order, with
// bounded retries, and records how far it got.
func (r *Relay) publishAggregate(ctx context.Context, p pending) {
	log := r.logger.With().Str("aggregate_id", p.id.String()).Logger()
	if r.parked.Has(p.id) || r.isHeld(p.id) {
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
	h.until = time.Now().Add(min(r.cfg.InitialBackoff<<min(h.failures, 20), time.Minute))
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
			msg, err = Message(up)
		}
		if err == nil {
			msg.Topic = TopicOf(r.cfg.TopicPrefix, up.AggregateType)
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
	wait := r.cfg.InitialBackoff
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, r.cfg.MaxBackoff)
	}
}

// markPublished records the relay's mark. Only the relay writes it, so a
// plain write is enough; it never moves backwards because the relay only
// publishes forwards from the mark it read.
func (r *Relay) markPublished(ctx context.Context, id gocql.UUID, seq int64) error {
	if err := r.session.Query(`UPDATE event_store SET published_sequence = ? WHERE aggregate_id = ?`, seq, id).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("recording published_sequence %d of %s: %w", seq, id, err)
	}
	return nil
}

// NewProducer builds the idempotent, acks=all producer the relay needs on
// the given sarama configuration (connection settings already applied).
func NewProducer(brokers []string, sc *sarama.Config) (sarama.SyncProducer, error) {
	ProducerConfig(sc)
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	return p, nil
}

// ProducerConfig sets what the relay's producer needs on sc: idempotence,
// acks=all, one request in flight per broker, key-hash partitioning.
func ProducerConfig(sc *sarama.Config) {
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 5
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewHashPartitioner
}

// EnsureTopics creates the topics of every aggregate type under prefix when
// missing.
func EnsureTopics(admin sarama.ClusterAdmin, prefix string, partitions int32, replication int16) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	for _, t := range []string{TopicOf(prefix, "order"), TopicOf(prefix, "customer")} {
		if _, ok := existing[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}

// Unpublished counts the events committed and not yet published in the
// whole event_store (one read of every partition's static columns): what
// tests and benchmarks wait on to see the relay done.
func Unpublished(ctx context.Context, session *gocql.Session) (int64, error) {
	iter := session.Query(`SELECT DISTINCT aggregate_id, current_sequence, published_sequence FROM event_store`).
		WithContext(ctx).Idempotent(true).PageSize(5000).Iter()
	var (
		id      gocql.UUID
		current int64
		pub     *int64
		total   int64
	)
	for iter.Scan(&id, &current, &pub) {
		if pub != nil {
			current -= *pub
		}
		total += current
		pub = nil
	}
	return total, iter.Close()
}
