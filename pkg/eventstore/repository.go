package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// conflictBackoff spreads the contenders of a hot aggregate after a
// conflict: a delay drawn from [0, 2ⁿ ms), at most 64 ms.
var conflictBackoff = backoff.Policy{Initial: time.Millisecond, Max: 64 * time.Millisecond}

// Aggregate is what the repository needs of a pure domain aggregate with
// state S, commands C and events E.
type Aggregate[S, C, E any] struct {
	Type   string
	Decide func(S, C) ([]E, error)
	Apply  func(S, E) S
}

// Codec turns an aggregate's events and state into stored bytes and back.
// DecodeEvent always receives the current layout (upcasting comes first).
type Codec[S, E any] interface {
	EncodeEvent(E) (eventType string, data []byte, err error)
	DecodeEvent(eventType string, data []byte) (E, error)
	EncodeState(S) ([]byte, error)
	DecodeState([]byte) (S, error)
	// StateVersion is the layout version of encoded state; snapshots of
	// another layout are ignored (and replaced as the aggregate grows).
	StateVersion() int32
}

// Metadata travels with a command onto each of its events.
type Metadata struct {
	// CommandID becomes each event's causation id. It names one command:
	// a retry of the same command (the same Idempotency-Key) carries the
	// same id, and Handle answers it with the earlier attempt's commit.
	CommandID     string
	CorrelationID string
	TraceContext  map[string]string
	// ExpectedVersion, when set, must equal the aggregate's version
	// (If-Match); a mismatch is a *PreconditionError and is never retried.
	ExpectedVersion *int64
	// Now is when the command was decided; events carry it as occurred-at.
	Now time.Time
}

// WrongTypeError says the id names an aggregate of another type (a
// customer's id used as an order's): to a command on it the aggregate does
// not exist, and the id cannot be taken by a new one.
type WrongTypeError struct {
	AggregateID gocql.UUID
	// Actual is the stored type, Wanted the type the caller loads.
	Actual, Wanted string
}

func (e *WrongTypeError) Error() string {
	return fmt.Sprintf("aggregate %s is a %s, not a %s", e.AggregateID, e.Actual, e.Wanted)
}

// ErrPrecondition is wrapped by *PreconditionError.
var ErrPrecondition = errors.New("precondition failed")

// PreconditionError says the aggregate is not at the version the caller
// expected.
type PreconditionError struct {
	Expected, Actual int64
}

func (e *PreconditionError) Error() string {
	return fmt.Sprintf("aggregate is at version %d, the request expected %d", e.Actual, e.Expected)
}

// Unwrap makes errors.Is(err, ErrPrecondition) true.
func (e *PreconditionError) Unwrap() error { return ErrPrecondition }

// Result is what a handled command did.
type Result[E any] struct {
	Version int64 // the aggregate's version after the command
	Events  []E   // the events committed; none for a no-op
	Retries int   // conflicts lost before the commit went through
}

// RepositoryStore is what a Repository needs of an event store: *Store
// and the in-memory twin (memstore) both satisfy it.
type RepositoryStore interface {
	Append(ctx context.Context, aggregateType string, id gocql.UUID, expected int64, events []Event) (int64, error)
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(Event) error) error
	LatestSnapshot(ctx context.Context, id gocql.UUID, maxVersion int64) (Snapshot, bool, error)
	SaveSnapshot(ctx context.Context, snap Snapshot) error
	// Config gives SnapshotEvery.
	Config() Config
}

// Repository loads, decides and commits one aggregate type.
type Repository[S, C, E any] struct {
	store      RepositoryStore
	agg        Aggregate[S, C, E]
	codec      Codec[S, E]
	upcasters  *Upcasters
	maxRetries int
	logger     zerolog.Logger
	snapFails  prometheus.Counter
	// cache holds recently folded states (statecache.go); nil: none.
	cache *StateCache[S]
}

// RepositoryConfig tunes a repository.
type RepositoryConfig struct {
	// MaxConflictRetries is how many times a command is re-decided on a
	// fresh state after losing a race before the conflict is returned.
	MaxConflictRetries int
}

// NewRepository builds the repository of one aggregate type.
func NewRepository[S, C, E any](store RepositoryStore, agg Aggregate[S, C, E], codec Codec[S, E], upcasters *Upcasters, cfg RepositoryConfig, logger zerolog.Logger, reg prometheus.Registerer) (*Repository[S, C, E], error) {
	r := &Repository[S, C, E]{
		store: store, agg: agg, codec: codec, upcasters: upcasters,
		maxRetries: cfg.MaxConflictRetries, logger: logger.With().Str("aggregate_type", agg.Type).Logger(),
		snapFails: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "snapshot_failures_total",
			Help: "Snapshots that could not be written (commands still succeed).", ConstLabels: prometheus.Labels{"aggregate_type": agg.Type},
		}),
	}
	if reg != nil {
		if err := reg.Register(r.snapFails); err != nil {
			return nil, fmt.Errorf("eventstore: registering metrics: %w", err)
		}
	}
	return r, nil
}

// Handle loads the aggregate, decides cmd against its state and commits
// the resulting events in one conditional batch. A lost race re-decides on
// the fresh state up to MaxConflictRetries times, unless the caller named
// an expected version. A command that decides no events commits nothing.
func (r *Repository[S, C, E]) Handle(ctx context.Context, id gocql.UUID, cmd C, meta Metadata) (Result[E], error) {
	fresh := false // load from the store, not the state cache
	for attempt := 0; ; attempt++ {
		state, version, cached, err := r.load(ctx, id, fresh)
		if err != nil {
			return Result[E]{}, err
		}
		// A cached state is trusted only through the commit's version
		// check: any other answer is decided again on a fresh load.
		if meta.ExpectedVersion != nil && *meta.ExpectedVersion != version {
			if cached {
				r.distrust(id)
				fresh, attempt = true, attempt-1
				continue
			}
			return Result[E]{}, &PreconditionError{Expected: *meta.ExpectedVersion, Actual: version}
		}
		events, err := r.agg.Decide(state, cmd)
		if cached && (err != nil || len(events) == 0) {
			r.distrust(id)
			fresh, attempt = true, attempt-1
			continue
		}
		if err != nil {
			return Result[E]{}, err
		}
		if len(events) == 0 {
			return Result[E]{Version: version, Retries: attempt}, nil
		}
		stored, err := r.encode(events, meta)
		if err != nil {
			return Result[E]{}, err
		}
		next, err := r.store.Append(ctx, r.agg.Type, id, version, stored)
		if err != nil {
			// A lost race or an unknown outcome: the cached state, if any,
			// is behind.
			if cached {
				r.distrust(id)
			} else {
				r.forget(id)
			}
			fresh = true
		}
		var conflict *ConflictError
		if errors.As(err, &conflict) && conflict.ActualType == "" && meta.CommandID != "" {
			// An earlier attempt of this very command (a retry with the same
			// Idempotency-Key) may have committed: its Paxos round was left
			// unfinished when the database died, so the load above did not
			// see it, and this Append has just finished it. Answer with that
			// commit instead of deciding again (twice the effect) or
			// refusing it (a create would be "already exists").
			if v, found, cerr := r.committedAfter(ctx, id, version, meta.CommandID); cerr != nil {
				return Result[E]{}, cerr
			} else if found {
				return Result[E]{Version: v, Retries: attempt}, nil
			}
		}
		if errors.As(err, &conflict) && cached {
			// The cached (or presumed new) state was behind: not a race
			// lost to a contender, so decide again at once on the stored
			// state.
			attempt--
			continue
		}
		if errors.As(err, &conflict) && conflict.ActualType == "" && meta.ExpectedVersion == nil && attempt < r.maxRetries {
			// Jittered backoff spreads the contenders of a hot aggregate so
			// that a loser does not lose again to the same crowd.
			if !backoff.Sleep(ctx, conflictBackoff.FullJitter(attempt+1)) {
				return Result[E]{}, fmt.Errorf("retrying after conflict: %w", ctx.Err())
			}
			continue
		}
		if err != nil {
			return Result[E]{}, err
		}
		r.maybeSnapshot(ctx, id, state, version, events, next)
		if r.cache != nil {
			for _, e := range events {
				state = r.agg.Apply(state, e)
			}
			r.remember(id, state, next)
		}
		return Result[E]{Version: next, Events: events, Retries: attempt}, nil
	}
}

func (r *Repository[S, C, E]) encode(events []E, meta Metadata) ([]Event, error) {
	out := make([]Event, len(events))
	for i, e := range events {
		typ, data, err := r.codec.EncodeEvent(e)
		if err != nil {
			return nil, fmt.Errorf("encoding event %d: %w", i, err)
		}
		out[i] = Event{
			EventID:       gocql.UUID(uuid.New()),
			Type:          typ,
			Version:       r.upcasters.Current(typ),
			Data:          data,
			CausationID:   meta.CommandID,
			CorrelationID: meta.CorrelationID,
			OccurredAt:    meta.Now,
			TraceContext:  meta.TraceContext,
		}
	}
	return out, nil
}

// maybeSnapshot writes a snapshot when the commit crossed a multiple of
// SnapshotEvery. Failure is logged and counted, never returned: the
// events are committed and snapshots are only an optimisation.
func (r *Repository[S, C, E]) maybeSnapshot(ctx context.Context, id gocql.UUID, state S, before int64, events []E, after int64) {
	every := int64(r.store.Config().SnapshotEvery)
	if every == 0 || after/every == before/every {
		return
	}
	for _, e := range events {
		state = r.agg.Apply(state, e)
	}
	data, err := r.codec.EncodeState(state)
	if err == nil {
		err = r.store.SaveSnapshot(ctx, Snapshot{
			AggregateID: id, AggregateType: r.agg.Type, Version: after,
			State: data, StateVersion: r.codec.StateVersion(), CreatedAt: time.Now().UTC(),
		})
	}
	if err != nil {
		r.snapFails.Inc()
		r.logger.Warn().Err(err).Str("aggregate_id", id.String()).Int64("version", after).Msg("snapshot not written")
	}
}

// Load returns the aggregate's current state and version (0 when it does
// not exist): the newest usable snapshot, then the events after it.
func (r *Repository[S, C, E]) Load(ctx context.Context, id gocql.UUID) (S, int64, error) {
	return r.StateAt(ctx, id, 0)
}

// StateAt returns the state at version upTo (0: the current version), and
// the version it reached, which is below upTo when the aggregate has fewer
// events.
func (r *Repository[S, C, E]) StateAt(ctx context.Context, id gocql.UUID, upTo int64) (S, int64, error) {
	var (
		state   S
		version int64
	)
	if r.store.Config().SnapshotEvery > 0 {
		snap, ok, err := r.store.LatestSnapshot(ctx, id, upTo)
		if err != nil {
			return state, 0, err
		}
		if ok && snap.StateVersion == r.codec.StateVersion() && snap.AggregateType == r.agg.Type {
			s, err := r.codec.DecodeState(snap.State)
			if err == nil {
				state, version = s, snap.Version
			} else {
				r.logger.Warn().Err(err).Str("aggregate_id", id.String()).Msg("ignoring undecodable snapshot")
			}
		}
	}
	err := r.store.Events(ctx, id, version, upTo, func(e Event) error {
		if e.AggregateType != "" && e.AggregateType != r.agg.Type {
			return &WrongTypeError{AggregateID: id, Actual: e.AggregateType, Wanted: r.agg.Type}
		}
		ev, err := r.Decode(e)
		if err != nil {
			return err
		}
		if e.Sequence != version+1 {
			return fmt.Errorf("aggregate %s: event %d follows %d: the stream has a gap", id, e.Sequence, version)
		}
		state = r.agg.Apply(state, ev)
		version = e.Sequence
		return nil
	})
	if err == nil && upTo == 0 {
		r.remember(id, state, version)
	}
	return state, version, err
}

// Decode upcasts a stored event and decodes it into a domain event.
func (r *Repository[S, C, E]) Decode(e Event) (E, error) {
	var zero E
	up, err := r.upcasters.Upcast(e)
	if err != nil {
		return zero, err
	}
	ev, err := r.codec.DecodeEvent(up.Type, up.Data)
	if err != nil {
		return zero, fmt.Errorf("decoding %s %d of %s: %w", e.Type, e.Sequence, e.AggregateID, err)
	}
	return ev, nil
}

// CommittedCommand tells whether a command with commandID (the events'
// causation id) was already committed to the aggregate, and at which
// version its last event landed. A retried request whose first attempt
// died between the commit and the answer uses it to answer without
// committing twice.
func (r *Repository[S, C, E]) CommittedCommand(ctx context.Context, id gocql.UUID, commandID string) (int64, bool, error) {
	return r.committedAfter(ctx, id, 0, commandID)
}

// committedAfter is CommittedCommand over the events after version after.
func (r *Repository[S, C, E]) committedAfter(ctx context.Context, id gocql.UUID, after int64, commandID string) (int64, bool, error) {
	var (
		version int64
		found   bool
	)
	err := r.store.Events(ctx, id, after, 0, func(e Event) error {
		if e.CausationID == commandID {
			version, found = e.Sequence, true
		}
		return nil
	})
	return version, found, err
}
