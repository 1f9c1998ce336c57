// Package projector is the machinery every projector service shares
// (DESIGN.md, "Projectors"): a Kafka consumer group per read model, events
// applied idempotently by the aggregate's sequence, gaps filled from
// event_store, read-model rows written and then the projector's
// per-aggregate checkpoint (checkpoints.go: rows may be ahead of the
// checkpoint, never behind), progress in projection_offsets, failures
// dead-lettered with the aggregate parked, and rebuilds from event_store
// into a new generation of the view's tables beside the live one
// (rebuild.go), switched to atomically once caught up.
//
// A projector service is a thin main around one View.
package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
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
)

// Config tunes a projector.
type Config struct {
	Group              string        `mapstructure:"group" help:"Kafka consumer group (empty: projector-<view name>)"`
	ReadyMaxLag        int64         `mapstructure:"ready_max_lag" help:"records behind the ends of the claimed partitions above which /readyz reports not ready"`
	MaxAttempts        int           `mapstructure:"max_attempts" help:"attempts at applying one record on transient errors before the consumer restarts"`
	InitialBackoff     time.Duration `mapstructure:"initial_backoff" help:"first pause between attempts"`
	MaxBackoff         time.Duration `mapstructure:"max_backoff" help:"longest pause between attempts"`
	OffsetsEvery       time.Duration `mapstructure:"offsets_every" help:"how often progress is written to projection_offsets, per partition"`
	ParkedEvery        time.Duration `mapstructure:"parked_every" help:"how often the parked aggregates are re-read (the dlq-service unparks them)"`
	ParkedMaxEvery     time.Duration `mapstructure:"parked_max_every" help:"how far the redrive worker's re-reads of the parked aggregates back off, doubling from parked_every, while none is parked (records flowing still re-read them every parked_every; 0: no back-off)"`
	RebuildRanges      int           `mapstructure:"rebuild_ranges" help:"token ranges a rebuild's scan of event_store is split into"`
	RebuildParallelism int           `mapstructure:"rebuild_parallelism" help:"token ranges of event_store a rebuild scans at once (one aggregate at a time each)"`
	// RebuildRate bounds the scan, so that a rebuild leaves the database
	// to the live consumers (which write the new generation too meanwhile).
	RebuildRate float64 `mapstructure:"rebuild_rate" help:"aggregates per second a rebuild's scan replays at most (0: no bound)"`
	// RebuildMaxLag, RebuildMaxDelay and RebuildMaxPause make the scan
	// yield to this member's live consumption (rebuild.go, yielder), so
	// that min_version reads keep their promise during a rebuild.
	RebuildMaxLag   int64         `mapstructure:"rebuild_max_lag" help:"records this member's consumer may be behind before a rebuild's scan pauses for it; it resumes at half as many (0: records never pause it)"`
	RebuildMaxDelay time.Duration `mapstructure:"rebuild_max_delay" help:"how long a partition of this member's consumer may stay behind its end before a rebuild's scan pauses for it; it resumes at half as long (0: time never pauses it)"`
	RebuildMaxPause time.Duration `mapstructure:"rebuild_max_pause" help:"longest pause of a rebuild's scan for a lagging consumer; the scan then runs for a quarter of it before it may pause again (it yields at most 80% of the time)"`
	// RebuildGrace is how long the replaced generation is kept (and kept
	// current) after a switch: readers holding a page token of it go on
	// reading it meanwhile.
	RebuildGrace time.Duration `mapstructure:"rebuild_grace" help:"how long a generation replaced by a rebuild is kept, and kept current, before its tables are dropped"`
	// RebuildTakeover is how old the rebuilding member's heartbeat must be
	// before another member resumes the rebuild.
	RebuildTakeover time.Duration `mapstructure:"rebuild_takeover" help:"age of a rebuild's heartbeat after which another member resumes it"`
	// GenerationRefresh is how often a member re-reads the view's
	// generations (projection_generations); GenerationMaxStale how long it
	// goes on with the last ones read while the read fails before it stops
	// applying records. A rebuild's scan starts GenerationMaxStale +
	// GenerationRefresh after the new generation is created, when every
	// member writes it.
	GenerationRefresh time.Duration `mapstructure:"generation_refresh" help:"how often a projector re-reads its view's generations"`
	// GenerationIdleRefresh is how often the rebuild worker re-reads them
	// while nothing calls for GenerationRefresh: this member applied no
	// record since its last read, and no generation is being built or
	// retired. A record applied after a longer pause reads them itself
	// first (generationsNow), so writes never go by older ones than
	// GenerationRefresh; the idle pace only bounds how late an idle member
	// takes over a silent rebuild or drops a retired generation.
	GenerationIdleRefresh time.Duration `mapstructure:"generation_idle_refresh" help:"how often an idle projector (no record applied since the last read, no rebuild or retired generation) re-reads its view's generations; a record applied reads them first when they are older than generation_refresh"`
	GenerationMaxStale    time.Duration `mapstructure:"generation_max_stale" help:"how long a projector applies records with generations it could not re-read before it stops (retries)"`
	// Topics names the topics (key topic_prefix, the relay's prefix): the
	// prefix is defined once, in the record contract.
	record.Topics `mapstructure:",squash"`
	// Retry is how the projector serves the dlq-service's retry requests
	// (retry.go).
	Retry deadletter.RetryConfig `mapstructure:"retry"`
	// Audit is the self-healing auditor (audit.go).
	Audit AuditConfig `mapstructure:"audit"`
}

// DefaultConfig suits the local stack.
func DefaultConfig() Config {
	return Config{
		Topics: record.DefaultTopics(), ReadyMaxLag: 1000, MaxAttempts: 8, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second,
		OffsetsEvery: time.Second, ParkedEvery: 5 * time.Second, ParkedMaxEvery: time.Minute, RebuildRanges: 64, RebuildParallelism: 16,
		RebuildRate: 500, RebuildMaxLag: 100, RebuildMaxDelay: time.Second, RebuildMaxPause: 10 * time.Second, RebuildGrace: 10 * time.Minute, RebuildTakeover: 30 * time.Second, GenerationRefresh: time.Second, GenerationIdleRefresh: 30 * time.Second, GenerationMaxStale: 5 * time.Second,
		Retry: deadletter.DefaultRetryConfig(), Audit: DefaultAuditConfig(),
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
	check(c.ReadyMaxLag >= 0, "ready_max_lag", "must not be negative, got %d", c.ReadyMaxLag)
	check(c.MaxAttempts >= 1, "max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	check(c.InitialBackoff > 0, "initial_backoff", "must be positive, got %s", c.InitialBackoff)
	check(c.MaxBackoff >= c.InitialBackoff, "max_backoff", "must be at least initial_backoff, got %s", c.MaxBackoff)
	check(c.OffsetsEvery > 0, "offsets_every", "must be positive, got %s", c.OffsetsEvery)
	check(c.ParkedEvery > 0, "parked_every", "must be positive, got %s", c.ParkedEvery)
	check(c.ParkedMaxEvery >= 0, "parked_max_every", "must not be negative, got %s", c.ParkedMaxEvery)
	check(c.RebuildRanges >= 1 && c.RebuildRanges <= 4096, "rebuild_ranges", "must be 1..4096, got %d", c.RebuildRanges)
	check(c.RebuildParallelism >= 1 && c.RebuildParallelism <= 1024, "rebuild_parallelism", "must be 1..1024, got %d", c.RebuildParallelism)
	check(c.GenerationRefresh > 0, "generation_refresh", "must be positive, got %s", c.GenerationRefresh)
	check(c.GenerationIdleRefresh >= c.GenerationRefresh, "generation_idle_refresh", "must be at least generation_refresh (%s), got %s", c.GenerationRefresh, c.GenerationIdleRefresh)
	check(c.GenerationMaxStale >= c.GenerationRefresh, "generation_max_stale", "must be at least generation_refresh, got %s", c.GenerationMaxStale)
	check(c.RebuildRate >= 0, "rebuild_rate", "must not be negative, got %g", c.RebuildRate)
	check(c.RebuildMaxLag >= 0, "rebuild_max_lag", "must not be negative, got %d", c.RebuildMaxLag)
	check(c.RebuildMaxDelay >= 0, "rebuild_max_delay", "must not be negative, got %s", c.RebuildMaxDelay)
	check(c.RebuildMaxPause > 0, "rebuild_max_pause", "must be positive, got %s", c.RebuildMaxPause)
	check(c.RebuildGrace >= 0, "rebuild_grace", "must not be negative, got %s", c.RebuildGrace)
	check(c.RebuildTakeover >= 3*c.GenerationRefresh, "rebuild_takeover", "must be at least 3 × generation_refresh, got %s", c.RebuildTakeover)
	return errors.Join(append(errs, c.Topics.Validate(), config.Nest("retry", c.Retry.Validate()), config.Nest("audit", c.Audit.Validate()))...)
}

// Projector applies one view's events.
type Projector[S any] struct {
	cfg     Config
	view    View[S]
	session *gocql.Session
	store   EventStore
	// checkpoints keeps the per-aggregate checkpoints and writes the rows
	// with them (checkpoints.go).
	checkpoints Checkpoints
	upcasters   *eventstore.Upcasters
	logger      zerolog.Logger
	tracer      trace.Tracer
	m           *projectorMetrics
	component   string

	parking *redrive.Parking // dead letters, the parked set, the redrive worker (retry.go)
	dlq     redrive.DeadLetters
	unknown atomic.Int64

	// The view's generations (generations.go, rebuild.go): the tables
	// each record is written to, re-read every GenerationRefresh.
	gens     GenerationStore
	member   string // this member, as a rebuild's owner
	genMu    sync.Mutex
	genState atomic.Pointer[genState[S]]
	// rebuilding is true while this member runs a rebuild's scan,
	// switching around the switch of generations.
	rebuilding, switching atomic.Bool
	rebuild               rebuildRun // the scan this member runs (rebuild.go)
	rebuildWake           chan struct{}

	onApplied func(id gocql.UUID, seq int64)
	// writes counts the writes of the active generation (applyOn): the
	// auditor rests while it stays put (audit.go).
	writes atomic.Int64

	redrives redriveState // the dlq-service's retry requests (retry.go)

	// cache holds the checkpoints this member wrote, per generation, so
	// that the next event of an aggregate needs no read. Only the member
	// that owns a partition writes its aggregates (and a rebuild's scan,
	// in a generation being built: a checkpoint cached here is then at
	// most behind the stored one, and a write from it loses to the newer
	// one by its timestamp); the cache is emptied whenever the partitions
	// are handed out again.
	cacheMu sync.Mutex
	cache   map[cacheKey]checkpoint[S]

	claimsMu       sync.Mutex
	claims         map[int32]*claimState // partitions this member consumes
	expectedClaims int                   // how many the group gave it
	joined         atomic.Bool
}

// New builds a projector of view.
func New[S any](cfg Config, view View[S], session *gocql.Session, store EventStore, logger zerolog.Logger, reg prometheus.Registerer, opts ...Option) (*Projector[S], error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	if view.Name == "" || view.AggregateType == "" || view.Fold == nil || view.Write == nil {
		return nil, errors.New("projector: the view needs a name, an aggregate type, Fold and Write")
	}
	if cfg.Group == "" {
		cfg.Group = "projector-" + view.Name
	}
	if (view.At == nil) != (view.Schema == nil) {
		return nil, errors.New("projector: a view has both At and Schema (generations) or neither")
	}
	m, err := newMetrics(view.Name, reg)
	if err != nil {
		return nil, err
	}
	o := projectorOptions{tracer: noop.NewTracerProvider().Tracer("")}
	for _, opt := range opts {
		opt(&o)
	}
	p := &Projector[S]{
		cfg: cfg, view: view, session: session, store: store, upcasters: eventcodec.NewUpcasters(),
		logger: logger.With().Str("projection", view.Name).Logger(), tracer: o.tracer, m: m, component: Component(view.Name),
		rebuildWake: make(chan struct{}, 1), claims: map[int32]*claimState{}, cache: map[cacheKey]checkpoint[S]{},
		member: memberName(),
	}
	p.gens = o.generations
	if p.gens == nil {
		if session == nil {
			p.gens = NewMemoryGenerations()
		} else {
			p.gens = NewGenerationStore(session)
		}
	}
	p.checkpoints = o.checkpoints
	if p.checkpoints == nil {
		p.checkpoints = NewCheckpoints(session)
	}
	p.dlq = o.deadLetters
	if p.dlq == nil {
		p.dlq = deadletter.NewStore(session, "")
	}
	if p.parking, err = redrive.New(p.component, p.dlq, cfg.Retry, p.redrive, p.logger, reg, redrive.Options{
		Metrics:        redrive.Metrics{Parked: m.parked, DeadLettered: m.deadLettered},
		ReloadEvery:    cfg.ParkedEvery,
		ReloadMaxEvery: cfg.ParkedMaxEvery,
		Paused:         p.switching.Load,
		Unparked:       p.unparkedElsewhere,
		EachRound:      p.catchUpUnparked,
	}); err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return p, nil
}

// OnApplied sets a function called after each write of an aggregate's rows
// (with the aggregate and the sequence now visible), for benchmarks that
// measure when a commit becomes readable. Set it before Run.
func (p *Projector[S]) OnApplied(f func(id gocql.UUID, seq int64)) { p.onApplied = f }

// Name is the view's name.
func (p *Projector[S]) Name() string { return p.view.Name }

// Topic is the topic the projector consumes.
func (p *Projector[S]) Topic() string { return p.cfg.Topic(p.view.AggregateType) }

// Component names the projector in dead_letter_queue and parked_aggregates.
func (p *Projector[S]) Component() string { return p.component }

// Component is the component name of the projector of the view called
// view (what the dlq-service's gauges are labelled with).
func Component(view string) string { return "projector/" + view }

// errPermanent marks an event that can never be applied as it is: the
// repository's one poison sentinel, redrive.ErrPoison.
var errPermanent = redrive.ErrPoison

// checkpoint is what the projector keeps per aggregate.
type checkpoint[S any] struct {
	seq     int64
	state   S
	existed bool
}

// cacheKey is an aggregate's checkpoint in one generation.
type cacheKey struct {
	gen int
	id  gocql.UUID
}

// cacheSize bounds the checkpoint cache; when full it starts over.
const cacheSize = 100_000

// cached returns the cached checkpoint of id in the active generation.
func (p *Projector[S]) cached(id gocql.UUID) (checkpoint[S], bool) {
	return p.cachedOn(p.primary().gen, id)
}

func (p *Projector[S]) cachedOn(gen int, id gocql.UUID) (checkpoint[S], bool) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	cp, ok := p.cache[cacheKey{gen, id}]
	return cp, ok
}

// remember caches cp as id's checkpoint in the active generation; with ok
// false it forgets id's checkpoints in every generation.
func (p *Projector[S]) remember(id gocql.UUID, cp checkpoint[S], ok bool) {
	p.rememberOn(p.primary().gen, id, cp, ok)
}

func (p *Projector[S]) rememberOn(gen int, id gocql.UUID, cp checkpoint[S], ok bool) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if !ok {
		for k := range p.cache {
			if k.id == id {
				delete(p.cache, k)
			}
		}
		return
	}
	if len(p.cache) >= cacheSize {
		clear(p.cache)
	}
	p.cache[cacheKey{gen, id}] = cp
}

func (p *Projector[S]) forget() {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	clear(p.cache)
}

// loadCheckpoint reads id's checkpoint in the active generation.
func (p *Projector[S]) loadCheckpoint(ctx context.Context, id gocql.UUID) (checkpoint[S], error) {
	st, err := p.generationsNow(ctx)
	if err != nil {
		return checkpoint[S]{}, err
	}
	return p.loadCheckpointOn(ctx, st.primary, id)
}

func (p *Projector[S]) loadCheckpointOn(ctx context.Context, t target[S], id gocql.UUID) (checkpoint[S], error) {
	if cp, ok := p.cachedOn(t.gen, id); ok {
		return cp, nil
	}
	var cp checkpoint[S]
	seq, state, found, err := p.checkpoints.Load(ctx, t.name, id)
	if err != nil || !found {
		return cp, err
	}
	cp.seq = seq
	if err := json.Unmarshal([]byte(state), &cp.state); err != nil {
		// The projector wrote it; if it cannot read it back the code
		// changed incompatibly, and a rebuild is the way out.
		return cp, fmt.Errorf("%w: the checkpoint of %s cannot be read (rebuild the projection): %v", errPermanent, id, err)
	}
	cp.existed = true
	return cp, nil
}

// Handle applies one record to every generation of the view being
// written (the active one, and a rebuild's new one or a replaced one kept
// a while; newest first, so that a newer generation is never behind an
// older one): in each, skipped when at or below the aggregate's checkpoint
// (a redelivery), applied when next, and when ahead, the missing events
// are read from event_store and applied first. An event the view cannot
// fold is dead-lettered and parks the aggregate for this projector (by the
// active generation; the others stop before it). The returned error is
// transient (the database); the caller retries.
func (p *Projector[S]) Handle(ctx context.Context, rec Record) error {
	defer p.lockAggregate(rec.AggregateID)() // a re-drive of the aggregate (retry.go) waits, or makes this wait
	if p.isParked(ctx, rec.AggregateID) {
		p.m.skipped.WithLabelValues("parked").Inc()
		p.noteSkipped(rec.AggregateID)
		return nil
	}
	st, err := p.generationsNow(ctx)
	if err != nil {
		return err
	}
	for _, t := range st.targets {
		if err := p.handleOn(ctx, t, rec); err != nil {
			return err
		}
	}
	return nil
}

// handleOn applies rec to one generation.
func (p *Projector[S]) handleOn(ctx context.Context, t target[S], rec Record) error {
	cp, err := p.loadCheckpointOn(ctx, t, rec.AggregateID)
	if errors.Is(err, errPermanent) {
		if !t.primary {
			p.logger.Warn().Err(err).Int("generation", t.gen).Str(logging.FieldAggregateID, rec.AggregateID.String()).Msg("checkpoint of a generation being rebuilt or retired unreadable; left")
			return nil
		}
		return p.park(ctx, eventstore.Event{AggregateID: rec.AggregateID, AggregateType: p.view.AggregateType, Sequence: rec.Sequence}, err)
	}
	if err != nil {
		return err
	}
	if rec.Sequence <= cp.seq {
		if t.primary {
			p.m.skipped.WithLabelValues("applied").Inc()
		}
		return nil
	}
	if !cp.existed {
		// The aggregate's first record here: it must be an aggregate of
		// this event_store (a record of another keyspace's relay on a
		// shared topic, or one ahead of the store, can never be applied).
		known, err := p.known(ctx, rec, t.primary)
		if err != nil || !known {
			return err
		}
	}
	var events []eventstore.Event
	if rec.Sequence == cp.seq+1 && rec.Err == nil {
		events = []eventstore.Event{rec.Event}
	} else {
		// A gap (records lost, skipped or not yet seen), or an envelope
		// that could not be read: event_store has every event.
		if rec.Sequence > cp.seq+1 && t.primary {
			p.m.gapFills.Inc()
			p.m.gapEvents.Add(float64(rec.Sequence - cp.seq - 1))
		}
		fctx, span := p.tracer.Start(ctx, "projector fill gap", trace.WithAttributes(
			record.AttrAggregateID.String(rec.AggregateID.String()), attribute.Int64("orderstream.gap.after", cp.seq), attribute.Int64("orderstream.gap.through", rec.Sequence),
			attribute.Bool("orderstream.gap.unreadable_envelope", rec.Err != nil), attribute.Int("orderstream.generation", t.gen)))
		err := p.store.Events(fctx, rec.AggregateID, cp.seq, rec.Sequence, func(e eventstore.Event) error {
			events = append(events, e)
			return nil
		})
		endSpan(span, err)
		if err != nil {
			return err
		}
		if int64(len(events)) != rec.Sequence-cp.seq {
			if known, err := p.known(ctx, rec, t.primary); err != nil || !known {
				return err
			}
			return fmt.Errorf("event_store has %d of the events %d..%d of %s", len(events), cp.seq+1, rec.Sequence, rec.AggregateID)
		}
	}
	return p.applyOn(ctx, t, rec.AggregateID, cp, events, !t.primary)
}

// known reports whether event_store has the record's aggregate, of the
// view's type, at least at the record's sequence. A record that fails this
// is skipped: it is counted (records_skipped_total{reason="unknown"}) and
// logged, not dead-lettered, since there is no event of this store to
// retry.
func (p *Projector[S]) known(ctx context.Context, rec Record, count bool) (bool, error) {
	version, typ, err := p.store.Version(ctx, rec.AggregateID)
	if err != nil {
		return false, err
	}
	if version >= rec.Sequence && typ == p.view.AggregateType {
		return true, nil
	}
	if !count {
		return false, nil
	}
	p.m.skipped.WithLabelValues("unknown").Inc()
	if n := p.unknown.Add(1); n&(n-1) == 0 { // the 1st, 2nd, 4th, 8th …
		l := p.recordLogger(ctx, rec)
		l.Warn().Int64("store_version", version).
			Str("store_type", typ).Int64("unknown_records", n).Msg("record of an aggregate event_store does not have (another keyspace's relay on the same topics?); skipped")
	}
	return false, nil
}

// apply folds events (consecutive, following cp, the aggregate's
// checkpoint in the active generation) and writes the rows and the
// checkpoint (Checkpoints.Commit). The other generations being written are
// brought to the same sequence first (catchUpOn). A poison event: what
// precedes it is written, then it is dead-lettered and the aggregate
// parked (unless it already is).
func (p *Projector[S]) apply(ctx context.Context, id gocql.UUID, cp checkpoint[S], events []eventstore.Event, parked bool) error {
	st, err := p.generationsNow(ctx)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return p.applyOn(ctx, st.primary, id, cp, events, parked)
	}
	for _, t := range st.targets {
		var err error
		if t.primary {
			err = p.applyOn(ctx, t, id, cp, events, parked)
		} else {
			err = p.catchUpOn(ctx, t, id, events)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// catchUpOn brings the aggregate in generation t through the last of
// events (read from event_store what precedes them there). A poison event
// stops it there, without a dead letter: the active generation's apply
// dead-letters it.
func (p *Projector[S]) catchUpOn(ctx context.Context, t target[S], id gocql.UUID, events []eventstore.Event) error {
	last := events[len(events)-1].Sequence
	cp, err := p.loadCheckpointOn(ctx, t, id)
	if errors.Is(err, errPermanent) {
		return nil
	}
	if err != nil || cp.seq >= last {
		return err
	}
	var todo []eventstore.Event
	if cp.seq+1 >= events[0].Sequence {
		for _, e := range events {
			if e.Sequence > cp.seq {
				todo = append(todo, e)
			}
		}
	} else {
		if err := p.store.Events(ctx, id, cp.seq, last, func(e eventstore.Event) error {
			todo = append(todo, e)
			return nil
		}); err != nil {
			return err
		}
		if int64(len(todo)) != last-cp.seq {
			return fmt.Errorf("event_store has %d of the events %d..%d of %s", len(todo), cp.seq+1, last, id)
		}
	}
	return p.applyOn(ctx, t, id, cp, todo, true)
}

// applyOn folds events (consecutive, following cp) and writes generation
// t's rows and checkpoint (Checkpoints.Commit). Counters, the cache and OnApplied
// follow the active generation only.
func (p *Projector[S]) applyOn(ctx context.Context, t target[S], id gocql.UUID, cp checkpoint[S], events []eventstore.Event, parked bool) error {
	start := time.Now()
	state, seq := cp.state, cp.seq
	var poison error
	var bad eventstore.Event
	for _, e := range events {
		up, err := p.upcasters.Upcast(e)
		if err == nil {
			state, err = p.view.Fold(state, up)
		}
		if err != nil {
			poison, bad = err, e
			break
		}
		seq = e.Sequence
	}
	if seq > cp.seq {
		if err := p.writeOn(ctx, t, id, cp, state, seq); err != nil {
			p.remember(id, cp, false) // the rows, even the checkpoint, may have landed
			return err
		}
		p.rememberOn(t.gen, id, checkpoint[S]{seq: seq, state: state, existed: true}, true)
		if !t.primary {
			return nil
		}
		p.m.applied.Add(float64(seq - cp.seq))
		metrics.Observe(ctx, p.m.applyDur, time.Since(start).Seconds())
		if p.logger.GetLevel() <= zerolog.DebugLevel {
			for _, e := range events {
				if e.Sequence > seq {
					break
				}
				l := logging.ForEvent(ctx, p.logger, e)
				l.Debug().Str("event_type", e.Type).Msg("event applied")
			}
		}
		p.writes.Add(1)
		if p.onApplied != nil {
			p.onApplied(id, seq)
		}
	}
	if poison != nil && !parked {
		return p.park(ctx, bad, poison)
	}
	return nil
}

// write writes the aggregate's rows and checkpoint in the active
// generation.
func (p *Projector[S]) write(ctx context.Context, id gocql.UUID, cp checkpoint[S], state S, seq int64) error {
	st, err := p.generationsNow(ctx)
	if err != nil {
		return err
	}
	return p.writeOn(ctx, st.primary, id, cp, state, seq)
}

// writeOn writes the aggregate's rows and checkpoint in generation t. A
// generation being built is written at the timestamp writeTimestamp
// gives, so that writes of it by a rebuild's scan and by the consumers,
// in whatever order they land, leave the newest state.
func (p *Projector[S]) writeOn(ctx context.Context, t target[S], id gocql.UUID, cp checkpoint[S], state S, seq int64) error {
	encoded, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%w: encoding the state of %s: %v", errPermanent, id, err)
	}
	err = p.checkpoints.Commit(ctx, t.name, id, seq, string(encoded), func(b *gocql.Batch) error {
		if t.writeBase != 0 {
			b.WithTimestamp(writeTimestamp(t.writeBase, seq))
		}
		return t.view.Write(b, id, cp.state, cp.existed, state, seq)
	})
	if rowsErr, ok := errors.AsType[*RowsError](err); ok {
		return fmt.Errorf("%w: rows of %s: %v", errPermanent, id, rowsErr.Err)
	}
	if err != nil {
		return fmt.Errorf("writing %s (generation %d) of %s at %d: %w", p.view.Name, t.gen, id, seq, err)
	}
	return nil
}

// park dead-letters e and parks its aggregate for this projector.
func (p *Projector[S]) park(ctx context.Context, e eventstore.Event, cause error) error {
	_, err := p.parking.Park(ctx, e, "", cause)
	return err
}

// isParked consults the parked set, re-read every ParkedEvery so that an
// aggregate the dlq-service unparks flows again. A failed re-read keeps
// the previous set.
func (p *Projector[S]) isParked(ctx context.Context, id gocql.UUID) bool {
	p.parking.ReloadIfStale(ctx)
	return p.parking.Has(id)
}

// handleRetrying applies a record, retrying transient failures with
// exponential backoff and jitter, at most MaxAttempts times.
func (p *Projector[S]) handleRetrying(ctx context.Context, rec Record) error {
	ctx, span := p.startProcess(ctx, rec)
	err := p.handleAttempts(ctx, rec)
	endSpan(span, err)
	return err
}

func (p *Projector[S]) handleAttempts(ctx context.Context, rec Record) error {
	bo := backoff.Policy{Initial: p.cfg.InitialBackoff, Max: p.cfg.MaxBackoff}.Start()
	for attempt := 1; ; attempt++ {
		err := p.Handle(ctx, rec)
		if err == nil {
			return nil
		}
		p.m.errors.Inc()
		if attempt >= p.cfg.MaxAttempts || ctx.Err() != nil {
			return fmt.Errorf("applying %s %d after %d attempts: %w", rec.AggregateID, rec.Sequence, attempt, err)
		}
		p.m.retries.Inc()
		if attempt == 1 || attempt&(attempt-1) == 0 {
			l := p.recordLogger(ctx, rec)
			l.Warn().Err(err).Int("attempt", attempt).Msg("applying a record failed; retrying")
		}
		if err := bo.Wait(ctx); err != nil {
			return err
		}
	}
}

// Metrics are some of the projector's counters, for tests and benchmarks.
type Metrics struct {
	Applied, GapFills, DeadLettered prometheus.Counter
	Skipped                         prometheus.Counter // records already applied (redeliveries)
}

// Metrics returns the projector's counters.
func (p *Projector[S]) Metrics() Metrics {
	return Metrics{Applied: p.m.applied, GapFills: p.m.gapFills, DeadLettered: p.m.deadLettered, Skipped: p.m.skipped.WithLabelValues("applied")}
}

type projectorMetrics struct {
	applied, gapFills, gapEvents, deadLettered, errors, retries prometheus.Counter
	skipped                                                     *prometheus.CounterVec
	applyDur                                                    prometheus.Histogram
	lag                                                         *prometheus.GaugeVec
	parked                                                      prometheus.Gauge
	rebuildAggregates, rebuildEvents                            prometheus.Gauge
	rebuilding                                                  prometheus.Gauge
	rebuildYielding                                             prometheus.Gauge
	rebuildYielded                                              prometheus.Counter
	rebuildRangesDone, rebuildRangesTotal                       prometheus.Gauge
	generationActive, generationBuilding                        prometheus.Gauge
}

func newMetrics(name string, reg prometheus.Registerer) (*projectorMetrics, error) {
	labels := prometheus.Labels{"projection": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: n, Help: help, ConstLabels: labels})
	}
	gauge := func(n, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: n, Help: help, ConstLabels: labels})
	}
	m := &projectorMetrics{
		applied:      counter("events_applied_total", "Events applied to the read model."),
		gapFills:     counter("gap_fills_total", "Records that arrived ahead of the aggregate's checkpoint, filled from event_store."),
		gapEvents:    counter("gap_events_total", "Events read from event_store to fill gaps."),
		deadLettered: counter("dead_lettered_total", "Events dead-lettered (each parks its aggregate for this projector)."),
		errors:       counter("apply_errors_total", "Failed attempts at applying a record (transient; retried)."),
		retries:      counter("retries_total", "Attempts retried after a transient failure."),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "records_skipped_total",
			Help: "Records not applied: already applied (redelivered), or their aggregate parked.", ConstLabels: labels}, []string{"reason"}),
		applyDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "apply_duration_seconds",
			Help: "Duration of applying one record's events (fold and batch write).", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "consumer_lag",
			Help: "Records between the last applied one and the end of the partition.", ConstLabels: labels}, []string{"partition"}),
		parked:             gauge("parked_aggregates", "Aggregates parked for this projector behind a dead-lettered event."),
		rebuildAggregates:  gauge("rebuild_aggregates", "Aggregates replayed by the running or last rebuild."),
		rebuildEvents:      gauge("rebuild_events", "Events replayed by the running or last rebuild."),
		rebuilding:         gauge("rebuilding", "1 while this member runs a rebuild's scan."),
		rebuildYielding:    gauge("rebuild_yielding", "1 while this member's rebuild scan pauses for its lagging consumer (rebuild_max_lag, rebuild_max_delay)."),
		rebuildYielded:     counter("rebuild_yield_seconds_total", "Time this member's rebuild scans spent paused for its lagging consumer."),
		rebuildRangesDone:  gauge("rebuild_ranges_done", "Token ranges of event_store the running or last rebuild's scan has finished."),
		rebuildRangesTotal: gauge("rebuild_ranges_total", "Token ranges of event_store the running or last rebuild's scan has."),
		generationActive:   gauge("generation_active", "The generation of the view's tables readers use."),
		generationBuilding: gauge("generation_building", "The generation a rebuild is writing, 0 when none."),
	}
	// Every reason from the start, so that the series (and the
	// dashboard's panel) exist before the first skip.
	for _, reason := range []string{"applied", "parked", "unknown", "dlq_skip"} {
		m.skipped.WithLabelValues(reason)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applied, m.gapFills, m.gapEvents, m.deadLettered, m.errors, m.retries, m.skipped, m.applyDur, m.lag, m.parked, m.rebuildAggregates, m.rebuildEvents, m.rebuilding, m.rebuildYielding, m.rebuildYielded, m.rebuildRangesDone, m.rebuildRangesTotal, m.generationActive, m.generationBuilding} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("projector: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}
