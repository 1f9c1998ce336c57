// Package eventstore keeps the events of every aggregate in the CQL
// event_store table and commits each command's events with ONE
// single-partition conditional batch (DESIGN.md, "Event store and the
// commit"): the aggregate's static current_sequence is checked and advanced
// and every new event row is inserted in one Paxos round, so a commit is
// atomic, isolated and linearizable per aggregate.
//
// It is the only code that names event_store: what other packages read of
// it (an aggregate's head, heads by token range or by recent commit, the
// relay's published mark, the backlog) are Store methods (heads.go), and
// each consumer declares the small interface it uses. memstore is the
// in-memory twin for unit tests; eventstoretest.Suite is the contract both
// keep.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// Config sets consistency, paging and limits of the store.
type Config struct {
	// Consistency of the commit phase of the conditional batch.
	WriteConsistency string `mapstructure:"write_consistency" help:"consistency of the commit phase of each conditional batch"`
	// SerialConsistency of the Paxos phase: SERIAL or LOCAL_SERIAL.
	SerialConsistency  string `mapstructure:"serial_consistency" help:"consistency of the Paxos phase: SERIAL or LOCAL_SERIAL"`
	ReadConsistency    string `mapstructure:"read_consistency" help:"consistency of event and snapshot reads"`
	PageSize           int    `mapstructure:"page_size" help:"rows per page when reading events"`
	MaxEventsPerCommit int    `mapstructure:"max_events_per_commit" help:"largest number of events one command may commit"`
	SnapshotEvery      int    `mapstructure:"snapshot_every" help:"take a snapshot each time this many events have been added; 0 disables snapshots"`
}

// DefaultConfig suits a single datacenter.
func DefaultConfig() Config {
	return Config{
		WriteConsistency:   "LOCAL_QUORUM",
		SerialConsistency:  "LOCAL_SERIAL",
		ReadConsistency:    "LOCAL_QUORUM",
		PageSize:           500,
		MaxEventsPerCommit: 100,
		SnapshotEvery:      100,
	}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	for key, v := range map[string]string{"write_consistency": c.WriteConsistency, "read_consistency": c.ReadConsistency} {
		if _, err := cql.ParseConsistency(v); err != nil {
			errs = append(errs, config.Errorf(key, "%v", err))
		}
	}
	if c.SerialConsistency != "SERIAL" && c.SerialConsistency != "LOCAL_SERIAL" {
		errs = append(errs, config.Errorf("serial_consistency", "must be SERIAL or LOCAL_SERIAL, got %q", c.SerialConsistency))
	}
	if c.PageSize < 10 || c.PageSize > 10000 {
		errs = append(errs, config.Errorf("page_size", "must be 10..10000, got %d", c.PageSize))
	}
	if c.MaxEventsPerCommit < 1 || c.MaxEventsPerCommit > 1000 {
		errs = append(errs, config.Errorf("max_events_per_commit", "must be 1..1000, got %d", c.MaxEventsPerCommit))
	}
	if c.SnapshotEvery < 0 {
		errs = append(errs, config.Errorf("snapshot_every", "must not be negative, got %d", c.SnapshotEvery))
	}
	return errors.Join(errs...)
}

// Event is one stored event with its envelope metadata.
type Event struct {
	AggregateID   gocql.UUID
	AggregateType string
	Sequence      int64
	EventID       gocql.UUID
	Type          string
	Version       int32
	Data          []byte // the payload as protojson
	CausationID   string
	CorrelationID string
	OccurredAt    time.Time
	TraceContext  map[string]string
}

// ErrConflict is wrapped by every *ConflictError.
var ErrConflict = errors.New("concurrent modification")

// ConflictError says a commit lost the race: the aggregate is no longer at
// the expected version.
type ConflictError struct {
	AggregateID gocql.UUID
	Expected    int64
	Actual      int64
	// ActualType is the aggregate's stored type when it differs from the
	// one committed (an id reused across aggregate types).
	ActualType string
}

func (e *ConflictError) Error() string {
	if e.ActualType != "" {
		return fmt.Sprintf("aggregate %s is a %s", e.AggregateID, e.ActualType)
	}
	return fmt.Sprintf("aggregate %s is at version %d, expected %d", e.AggregateID, e.Actual, e.Expected)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Store reads and writes event_store and snapshots.
type Store struct {
	session *gocql.Session
	tracer  trace.Tracer
	cfg     Config
	write   gocql.Consistency
	serial  gocql.Consistency
	read    gocql.Consistency
	metrics *storeMetrics
	// commitMetrics: the commit metrics are registered (WithCommitMetrics).
	commitMetrics bool
}

type storeMetrics struct {
	writeDuration *prometheus.HistogramVec
	conflicts     prometheus.Counter
	eventsWritten prometheus.Counter
	eventsRead    prometheus.Counter
}

// Option configures a Store.
type Option func(*Store)

// WithCommitMetrics registers the commit metrics too (write duration,
// conflicts, events written). Only a service that commits passes it, so
// that a service that only reads exports no commit series that always
// read 0 and no dashboard offers them for it.
func WithCommitMetrics() Option {
	return func(s *Store) { s.commitMetrics = true }
}

// WithTracerProvider makes the store trace each of its calls (a span per
// commit, version read, event read and snapshot read or write).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *Store) { s.tracer = tp.Tracer("github.com/orderstream/orderstream/pkg/eventstore") }
}

// New builds a store over session (bound to the orderstream keyspace).
func New(session *gocql.Session, cfg Config, reg prometheus.Registerer, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eventstore: %w", err)
	}
	s := &Store{session: session, cfg: cfg, tracer: noop.NewTracerProvider().Tracer("")}
	for _, o := range opts {
		o(s)
	}
	s.write, _ = cql.ParseConsistency(cfg.WriteConsistency)
	s.read, _ = cql.ParseConsistency(cfg.ReadConsistency)
	s.serial = gocql.LocalSerial
	if cfg.SerialConsistency == "SERIAL" {
		s.serial = gocql.Serial
	}
	m := &storeMetrics{
		writeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "write_duration_seconds",
			Help:    "Duration of event store commits (one conditional batch each), by outcome.",
			Buckets: []float64{.001, .002, .004, .006, .008, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "conflicts_total",
			Help: "Commits rejected because the aggregate had moved on.",
		}),
		eventsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "events_written_total",
			Help: "Events committed.",
		}),
		eventsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "events_read_total",
			Help: "Events read while loading aggregates and histories.",
		}),
	}
	if reg != nil {
		registered := []prometheus.Collector{m.eventsRead}
		if s.commitMetrics {
			registered = append(registered, m.writeDuration, m.conflicts, m.eventsWritten)
		}
		for _, c := range registered {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("eventstore: registering metrics: %w", err)
			}
		}
	}
	s.metrics = m
	return s, nil
}

// Config returns the store's configuration.
func (s *Store) Config() Config { return s.cfg }

// Append commits events to the aggregate, which must be at version
// expected (0 for an aggregate that does not exist yet), and returns the
// new version. The events' Sequence fields are assigned here. A lost race
// returns a *ConflictError carrying the actual version.
func (s *Store) Append(ctx context.Context, aggregateType string, id gocql.UUID, expected int64, events []Event) (int64, error) {
	if len(events) == 0 {
		return expected, nil
	}
	if len(events) > s.cfg.MaxEventsPerCommit {
		return 0, fmt.Errorf("eventstore: %d events in one commit, at most %d", len(events), s.cfg.MaxEventsPerCommit)
	}
	ctx, span := s.tracer.Start(ctx, "eventstore.Append", trace.WithAttributes(
		attribute.String("orderstream.aggregate_id", id.String()), attribute.Int64("orderstream.expected_version", expected), attribute.Int("orderstream.events", len(events))))
	defer span.End()
	start := time.Now()
	next := expected + int64(len(events))
	now := time.Now().UTC()

	b := s.session.Batch(gocql.LoggedBatch).WithContext(ctx).SerialConsistency(s.serial)
	b.SetConsistency(s.write)
	if expected == 0 {
		b.Query(`INSERT INTO event_store (aggregate_id, aggregate_type, current_sequence, published_sequence, updated_at) VALUES (?, ?, ?, 0, ?) IF NOT EXISTS`,
			id, aggregateType, next, now)
	} else {
		b.Query(`UPDATE event_store SET current_sequence = ?, updated_at = ? WHERE aggregate_id = ? IF current_sequence = ? AND aggregate_type = ?`,
			next, now, id, expected, aggregateType)
	}
	for i := range events {
		e := &events[i]
		e.AggregateID, e.AggregateType, e.Sequence = id, aggregateType, expected+int64(i)+1
		b.Query(`INSERT INTO event_store (aggregate_id, sequence_number, event_id, event_type, event_version, event_data, causation_id, correlation_id, timestamp, trace_context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, e.Sequence, e.EventID, e.Type, e.Version, string(e.Data), e.CausationID, e.CorrelationID, e.OccurredAt, e.TraceContext)
	}

	current := map[string]any{}
	applied, iter, err := s.session.MapExecuteBatchCAS(b, current)
	if iter != nil {
		_ = iter.Close()
	}
	elapsed := time.Since(start).Seconds()
	if err != nil {
		s.metrics.writeDuration.WithLabelValues("error").Observe(elapsed)
		span.SetStatus(codes.Error, err.Error())
		return 0, fmt.Errorf("committing %d events to %s: %w", len(events), id, err)
	}
	if !applied {
		span.SetAttributes(attribute.Bool("orderstream.conflict", true))
		s.metrics.writeDuration.WithLabelValues("conflict").Observe(elapsed)
		s.metrics.conflicts.Inc()
		ce := &ConflictError{AggregateID: id, Expected: expected}
		if v, ok := current["current_sequence"].(int64); ok {
			ce.Actual = v
		}
		if t, ok := current["aggregate_type"].(string); ok && t != "" && t != aggregateType {
			ce.ActualType = t
		}
		return 0, ce
	}
	s.metrics.writeDuration.WithLabelValues("committed").Observe(elapsed)
	s.metrics.eventsWritten.Add(float64(len(events)))
	return next, nil
}

// Version returns the aggregate's current version and type; version 0 and
// an empty type when it does not exist.
func (s *Store) Version(ctx context.Context, id gocql.UUID) (int64, string, error) {
	ctx, span := s.tracer.Start(ctx, "eventstore.Version")
	defer span.End()
	var (
		version int64
		typ     string
	)
	err := s.session.Query(`SELECT current_sequence, aggregate_type FROM event_store WHERE aggregate_id = ? LIMIT 1`, id).
		WithContext(ctx).Consistency(s.read).Idempotent(true).Scan(&version, &typ)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("reading version of %s: %w", id, err)
	}
	return version, typ, nil
}

// Events calls fn for each event of the aggregate with after < sequence ≤
// upTo (upTo 0: no upper bound), in sequence order, reading page by page.
func (s *Store) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(Event) error) error {
	ctx, span := s.tracer.Start(ctx, "eventstore.Events", trace.WithAttributes(
		attribute.String("orderstream.aggregate_id", id.String()), attribute.Int64("orderstream.after", after)))
	defer span.End()
	stmt := `SELECT sequence_number, aggregate_type, event_id, event_type, event_version, event_data, causation_id, correlation_id, timestamp, trace_context FROM event_store WHERE aggregate_id = ? AND sequence_number > ?`
	args := []any{id, after}
	if upTo > 0 {
		stmt += ` AND sequence_number <= ?`
		args = append(args, upTo)
	}
	iter := s.session.Query(stmt, args...).WithContext(ctx).Consistency(s.read).Idempotent(true).
		PageSize(s.cfg.PageSize).Iter()
	var (
		e    Event
		data string
		n    int
	)
	for iter.Scan(&e.Sequence, &e.AggregateType, &e.EventID, &e.Type, &e.Version, &data, &e.CausationID, &e.CorrelationID, &e.OccurredAt, &e.TraceContext) {
		e.AggregateID = id
		e.Data = []byte(data)
		n++
		if err := fn(e); err != nil {
			_ = iter.Close()
			s.metrics.eventsRead.Add(float64(n))
			return err
		}
		e = Event{}
	}
	s.metrics.eventsRead.Add(float64(n))
	if err := iter.Close(); err != nil {
		return fmt.Errorf("reading events of %s: %w", id, err)
	}
	return nil
}

// Snapshot is the encoded state of an aggregate at a version.
type Snapshot struct {
	AggregateID   gocql.UUID
	AggregateType string
	Version       int64
	State         []byte
	StateVersion  int32 // layout version of State; a mismatch makes the loader ignore the snapshot
	CreatedAt     time.Time
}

// LatestSnapshot returns the newest snapshot at or below maxVersion
// (0: any), or false when there is none.
func (s *Store) LatestSnapshot(ctx context.Context, id gocql.UUID, maxVersion int64) (Snapshot, bool, error) {
	ctx, span := s.tracer.Start(ctx, "eventstore.LatestSnapshot")
	defer span.End()
	stmt := `SELECT version, aggregate_type, state, state_version, created_at FROM snapshots WHERE aggregate_id = ?`
	args := []any{id}
	if maxVersion > 0 {
		stmt += ` AND version <= ?`
		args = append(args, maxVersion)
	}
	snap := Snapshot{AggregateID: id}
	var state string
	err := s.session.Query(stmt+` LIMIT 1`, args...).WithContext(ctx).Consistency(s.read).Idempotent(true).
		Scan(&snap.Version, &snap.AggregateType, &state, &snap.StateVersion, &snap.CreatedAt)
	if errors.Is(err, gocql.ErrNotFound) {
		return Snapshot{}, false, nil
	}
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("reading snapshot of %s: %w", id, err)
	}
	snap.State = []byte(state)
	return snap, true, nil
}

// SaveSnapshot writes a snapshot. Snapshots are an optimisation only: a
// lost or stale one costs a longer load, never a wrong state.
func (s *Store) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	ctx, span := s.tracer.Start(ctx, "eventstore.SaveSnapshot")
	defer span.End()
	err := s.session.Query(`INSERT INTO snapshots (aggregate_id, version, aggregate_type, state, state_version, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		snap.AggregateID, snap.Version, snap.AggregateType, string(snap.State), snap.StateVersion, snap.CreatedAt).
		WithContext(ctx).Consistency(s.write).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("saving snapshot of %s at %d: %w", snap.AggregateID, snap.Version, err)
	}
	return nil
}
