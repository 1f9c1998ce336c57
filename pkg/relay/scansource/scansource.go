// Package scansource is the relay's scan source: it reads the static
// columns of event_store (through the event store's heads: current and
// published sequence per aggregate) and notifies the publisher of every
// aggregate with unpublished events. It works on every CQL database and is
// the reconcile behind the CDC source (relay/cdcsource) on ScyllaDB.
//
// With the index on updated_at (Apache Cassandra 5, schema v0003), recent
// commits are read every RecentInterval while full scans reconcile every
// ReconcileEvery, side by side (an aggregate found by both is published
// once: its worker re-reads the marks first). Without the index, full
// scans run every ScanInterval. Each scan's aggregates are all handled
// before the next scan of that kind starts.
//
// With commit hints (WithHints: the relay learns of each commit from the
// hint topic, relay/hintsource), the fast loop (the reads of recent commits,
// or the full scans without the index) is no longer the hot path but the
// net under lost hints: each read that misses nothing doubles the pause
// before the next (pkg/backoff, jittered) up to IdleMaxInterval, and a read
// that finds an unpublished aggregate no hint announced (hints lost) brings
// the pause back to RecentInterval (ScanInterval). What a read finds is
// always published at once; the pause only bounds how late the next lost
// hint is caught. An aggregate counts as announced when the hint source
// read a hint for it since shortly before the read began (Hinted), so that
// under load the commits whose hints are on their way, which every read
// finds, do not keep the loop fast. An idle relay then reads the database
// about once per IdleMaxInterval instead of every few milliseconds. The
// reconcile beside the reads of recent commits (the net under that net)
// backs off the same way with hints, from ReconcileEvery up to
// ReconcileMaxEvery: a full scan reads every partition of event_store, so
// an idle relay that scanned every few seconds would cost the database a
// steady share of a core on a large store.
package scansource

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// Config tunes the scans. The relay's configuration embeds it, so its keys
// are relay.scan_interval, relay.scan_ranges, ….
type Config struct {
	ScanInterval      time.Duration `mapstructure:"scan_interval" help:"pause between two full scans of the static columns when there is no index on updated_at (ScyllaDB, or a Cassandra without SAI)"`
	RecentInterval    time.Duration `mapstructure:"recent_interval" help:"pause between two reads of the recently committed aggregates (the index on updated_at, Apache Cassandra 5)"`
	RecentLookback    time.Duration `mapstructure:"recent_lookback" help:"how far before the previous read of recent commits the next one looks (covers commit latency and clock skew between command-service hosts and the relay)"`
	ReconcileEvery    time.Duration `mapstructure:"reconcile_every" help:"full scan interval while recent commits are read through the index (or, with hints, while the CDC source notifies): the reconcile that catches whatever they missed"`
	ScanRanges        int           `mapstructure:"scan_ranges" help:"token ranges one scan is split into"`
	ScanParallelism   int           `mapstructure:"scan_parallelism" help:"token ranges read at once during a scan"`
	IdleMaxInterval   time.Duration `mapstructure:"idle_max_interval" help:"with commit hints on (hints.enabled), the longest pause the reads of recent commits (or the full scans, without the index) back off to while they find nothing unpublished that no hint announced; such a find (a lost hint) brings the pause back to recent_interval (scan_interval)"`
	ReconcileMaxEvery time.Duration `mapstructure:"reconcile_max_every" help:"with commit hints on (hints.enabled), the longest pause the reconcile's full scans (beside the reads of recent commits through the index, or beside the CDC source) back off to while they find nothing unpublished that no hint announced; such a find brings the pause back to reconcile_every"`
}

// DefaultConfig favours latency on a small cluster.
func DefaultConfig() Config {
	return Config{ScanInterval: 50 * time.Millisecond, RecentInterval: 10 * time.Millisecond, RecentLookback: 500 * time.Millisecond, ReconcileEvery: 5 * time.Second,
		ScanRanges: 16, ScanParallelism: 4, IdleMaxInterval: time.Second, ReconcileMaxEvery: time.Minute}
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
	check(c.IdleMaxInterval > 0, "idle_max_interval", "must be positive, got %s", c.IdleMaxInterval)
	check(c.ReconcileMaxEvery > 0, "reconcile_max_every", "must be positive, got %s", c.ReconcileMaxEvery)
	return errors.Join(errs...)
}

// Store is what the scans read of the event store; *eventstore.Store and
// its in-memory twin (eventstore/memstore) have it.
type Store interface {
	// HeadsInRange reads the heads of the aggregates whose token lies in rg.
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
	// CheckRecent returns nil when RecentHeads works (the index on
	// updated_at exists).
	CheckRecent(ctx context.Context) error
	// RecentHeads reads the heads of the aggregates committed after since.
	RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error
}

// Notify hands the publisher an aggregate with events to publish; done,
// when not nil, is called once the aggregate was handled (published, or
// left for later). It is the shape every source of the relay is run with
// (relay.Relay.Notify, relay.Notify): an alias, so that every source's
// Run has the same signature.
type Notify = func(ctx context.Context, aggregateID gocql.UUID, done func()) error

// Hooks are what the scans tell the publisher, and ask of it, around a full
// scan.
type Hooks struct {
	// BeforeFullScan runs before each full scan (the relay reloads its
	// parked set); an error fails the scan.
	BeforeFullScan func(ctx context.Context) error
	// AfterFullScan runs after each full scan that completed, with the
	// number of events it found unpublished.
	AfterFullScan func(backlog int64)
}

// Source scans event_store. Build it with New; Run it under a supervisor.
type Source struct {
	cfg    Config
	store  Store
	hooks  Hooks
	logger zerolog.Logger
	m      sourceMetrics
	hints  bool
	hinted Hinted
	// reconcileOnly: another source learns of every commit (ReconcileOnly).
	reconcileOnly bool
	// onPause and onReconcilePause, in tests, see every pause of the fast
	// loop and of the reconcile.
	onPause, onReconcilePause func(time.Duration)
}

// Option tunes a Source.
type Option func(*Source)

// Hinted reports whether a hint announced the aggregate at or after since
// (hintsource.Source.Hinted).
type Hinted func(id gocql.UUID, since time.Time) bool

// WithHints tells the source that the relay also learns of commits from
// commit hints: its fast loop then backs off while it misses nothing (see
// the package doc). hinted tells which found aggregates a hint announced;
// nil counts every find as a miss. Without WithHints the fast loop keeps
// its fixed pause.
func WithHints(hinted Hinted) Option {
	return func(s *Source) { s.hints, s.hinted = true, hinted }
}

// ReconcileOnly tells the source that another source (the CDC log) learns
// of every commit, so that without the index on updated_at its full scans
// are only the reconcile: they run every ReconcileEvery (backing off to
// ReconcileMaxEvery with hints) instead of every ScanInterval (backing off
// to IdleMaxInterval). cdc-relay sets it with the CDC source and hints
// both on: a lost hint is then caught by the CDC log within its confidence
// window, and an idle relay does not scan all of event_store every second.
func ReconcileOnly() Option {
	return func(s *Source) { s.reconcileOnly = true }
}

type sourceMetrics struct {
	lag         prometheus.Gauge
	scans       prometheus.Counter
	scanDur     prometheus.Histogram
	recentScans prometheus.Counter
	recentDur   prometheus.Histogram
	pause       prometheus.Gauge
	finds       prometheus.Counter
	reconcile   prometheus.Gauge
}

// New builds a scan source and registers its metrics (the relay's scan
// series, orderstream_relay_scans_total, …) on reg; a nil reg disables
// them.
func New(cfg Config, store Store, hooks Hooks, logger zerolog.Logger, reg prometheus.Registerer, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scansource: %w", err)
	}
	if store == nil {
		return nil, errors.New("scansource: nil store")
	}
	m := sourceMetrics{
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
		pause: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "poll_pause_seconds",
			Help: "Pause before the next read of recent commits (or full scan, without the index); with commit hints it grows while reads find nothing."}),
		finds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "poll_finds_total",
			Help: "Reads of recent commits (or full scans, without the index) that found unpublished aggregates no commit hint had announced (with hints on: hints lost; every find without them)."}),
		reconcile: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "reconcile_pause_seconds",
			Help: "Pause before the next reconcile (the full scan beside the reads of recent commits); with commit hints it grows while scans find nothing."}),
	}
	if reg != nil {
		cs := []prometheus.Collector{m.lag, m.scans, m.scanDur, m.recentScans, m.recentDur, m.pause, m.finds, m.reconcile}
		for i, c := range cs {
			if err := reg.Register(c); err != nil {
				for _, done := range cs[:i] {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("scansource: registering metrics: %w", err)
			}
		}
	}
	s := &Source{cfg: cfg, store: store, hooks: hooks, logger: logger, m: m}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Run scans and notifies until ctx is done (it then returns nil). A failure
// to read the database ends it with an error; its supervisor restarts it.
func (s *Source) Run(ctx context.Context, notify Notify) error {
	if err := s.store.CheckRecent(ctx); err != nil {
		s.logger.Debug().Err(err).Msg("the recent-commits query is not available")
		if s.reconcileOnly {
			s.logger.Info().Dur("reconcile_every", s.cfg.ReconcileEvery).Bool("hints", s.hints).Dur("reconcile_max_every", s.cfg.ReconcileMaxEvery).
				Msg("no index on event_store.updated_at, and another source learns of every commit: full scans reconcile")
			return s.loop(ctx, notify, s.reconcilePause(), s.fullScan)
		}
		s.logger.Info().Dur("scan_interval", s.cfg.ScanInterval).Bool("hints", s.hints).Dur("idle_max_interval", s.cfg.IdleMaxInterval).Msg("no index on event_store.updated_at: full scans only")
		return s.loop(ctx, notify, s.fastPause(s.cfg.ScanInterval), s.fullScan)
	}
	s.logger.Info().Dur("recent_interval", s.cfg.RecentInterval).Dur("reconcile_every", s.cfg.ReconcileEvery).Bool("hints", s.hints).
		Dur("idle_max_interval", s.cfg.IdleMaxInterval).Dur("reconcile_max_every", s.cfg.ReconcileMaxEvery).Msg("reading recent commits through the index on updated_at; full scans reconcile")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.loop(gctx, notify, s.reconcilePause(), s.fullScan) })
	g.Go(func() error {
		since := time.Now().Add(-s.cfg.RecentLookback)
		return s.loop(gctx, notify, s.fastPause(s.cfg.RecentInterval), func(ctx context.Context, found func(gocql.UUID)) error {
			start := time.Now()
			if _, err := collect(found, func(fn func(eventstore.Head) error) error {
				return s.store.RecentHeads(ctx, since.Add(-s.cfg.RecentLookback), fn)
			}); err != nil {
				return err
			}
			since = start
			s.m.recentScans.Inc()
			s.m.recentDur.Observe(time.Since(start).Seconds())
			return nil
		})
	})
	return g.Wait()
}

// pauser gives the pause after a scan that missed missed aggregates (found
// them unpublished, and no hint announced them). Each loop owns its own.
type pauser func(missed int64) time.Duration

// fastPause is the pause of the fast loop: fixed at base without hints;
// with them, base after a miss and growing (jittered, doubling) up to
// IdleMaxInterval while scans miss nothing. Each pause goes to the
// orderstream_relay_poll_pause_seconds gauge.
func (s *Source) fastPause(base time.Duration) func() pauser {
	return s.adaptivePause(base, s.cfg.IdleMaxInterval, func(missed int64, d time.Duration) {
		if missed > 0 {
			s.m.finds.Inc()
		}
		s.m.pause.Set(d.Seconds())
		if s.onPause != nil {
			s.onPause(d)
		}
	})
}

// reconcilePause is the pause of the reconcile beside the reads of recent
// commits: fixed at ReconcileEvery without hints; with them, growing up to
// ReconcileMaxEvery while its scans miss nothing. Each pause goes to the
// orderstream_relay_reconcile_pause_seconds gauge.
func (s *Source) reconcilePause() func() pauser {
	return s.adaptivePause(s.cfg.ReconcileEvery, s.cfg.ReconcileMaxEvery, func(_ int64, d time.Duration) {
		s.m.reconcile.Set(d.Seconds())
		if s.onReconcilePause != nil {
			s.onReconcilePause(d)
		}
	})
}

// adaptivePause pauses for base without hints; with them, for base after a
// miss and growing (jittered, doubling) up to capAt while scans miss
// nothing. observe sees each scan's misses and the pause chosen.
func (s *Source) adaptivePause(base, capAt time.Duration, observe func(missed int64, d time.Duration)) func() pauser {
	return func() pauser {
		// A base above the cap is kept: the cap only slows, never hastens.
		b := backoff.Policy{Initial: base, Max: max(base, capAt)}.Start()
		return func(missed int64) time.Duration {
			d := base
			if s.hints {
				if missed > 0 {
					b.Reset()
				} else {
					d = b.Next()
				}
			}
			observe(missed, d)
			return d
		}
	}
}

// loop runs one kind of scan until ctx ends, pausing between scans; each
// scan's aggregates are all handled before the next scan starts. With
// hints, the aggregates found are judged once handled: those a hint
// announced meanwhile (or shortly before) are not misses.
func (s *Source) loop(ctx context.Context, notify Notify, newPause func() pauser, scan func(context.Context, func(gocql.UUID)) error) error {
	var inflight sync.WaitGroup
	pause := newPause()
	judge := s.hinted != nil
	for {
		var (
			start  = time.Now()
			missed atomic.Int64 // a full scan finds in parallel
			mu     sync.Mutex
			found  []gocql.UUID // to judge
		)
		err := scan(ctx, func(id gocql.UUID) {
			if judge {
				mu.Lock()
				found = append(found, id)
				mu.Unlock()
			} else {
				missed.Add(1)
			}
			inflight.Add(1)
			if notify(ctx, id, inflight.Done) != nil {
				inflight.Done() // ctx ended: the scan stops too
			}
		})
		inflight.Wait()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("scanning event_store: %w", err)
		}
		for _, id := range found {
			if !s.hinted(id, start.Add(-s.cfg.RecentLookback)) {
				missed.Add(1)
			}
		}
		t := time.NewTimer(pause(missed.Load()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// fullScan reads the heads of every partition, token range by token range,
// hands each aggregate with unpublished events to found and records the
// backlog.
func (s *Source) fullScan(ctx context.Context, found func(gocql.UUID)) error {
	start := time.Now()
	if s.hooks.BeforeFullScan != nil {
		if err := s.hooks.BeforeFullScan(ctx); err != nil {
			return err
		}
	}
	var (
		backlog atomic.Int64
		ranges  = make(chan eventstore.TokenRange, s.cfg.ScanRanges)
	)
	for _, rg := range eventstore.SplitTokens(s.cfg.ScanRanges) {
		ranges <- rg
	}
	close(ranges)
	g, gctx := errgroup.WithContext(ctx)
	for range s.cfg.ScanParallelism {
		g.Go(func() error {
			for rg := range ranges {
				n, err := collect(found, func(fn func(eventstore.Head) error) error {
					return s.store.HeadsInRange(gctx, rg, fn)
				})
				backlog.Add(n)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	s.m.lag.Set(float64(backlog.Load()))
	if s.hooks.AfterFullScan != nil {
		s.hooks.AfterFullScan(backlog.Load())
	}
	s.m.scans.Inc()
	s.m.scanDur.Observe(time.Since(start).Seconds())
	return nil
}

// collect reads the heads a scan returns, hands each aggregate with
// unpublished events to found, and returns how many events were
// unpublished.
func collect(found func(gocql.UUID), scan func(func(eventstore.Head) error) error) (int64, error) {
	var backlog int64
	err := scan(func(h eventstore.Head) error {
		if h.Current > h.Published {
			backlog += h.Current - h.Published
			found(h.AggregateID)
		}
		return nil
	})
	return backlog, err
}
