package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/metrics"
)

// StateCache keeps the folded state of recently used aggregates in memory
// (issue 18), so that a command on an aggregate this process has just
// loaded or written decides on it without reading snapshots and events
// again.
//
// A cached state may be stale: another process (another command-service
// replica) may have committed since. Handle trusts a cached state only
// through the commit, which is conditional on the aggregate's version: a
// stale state loses that race (*ConflictError), its entry is dropped and
// the command is decided again on a fresh load, as on any conflict.
// Every other answer a state could give without a commit (a refusal, a
// no-op, a failed If-Match) is decided again on a fresh load before it
// is given. Current, for reads outside a commit, checks the cached
// version against the stored one first.
//
// Entries are bounded in number (LRU) and in age (the TTL, checked on
// read: hashicorp's expirable LRU runs a goroutine that never stops).
type StateCache[S any] struct {
	entries  *lru.Cache[gocql.UUID, cachedState[S]]
	ttl      time.Duration
	versions VersionReader
	admit    func(S) bool // nil: every state
	now      func() time.Time
	hits     prometheus.Counter
	misses   prometheus.Counter
	stale    prometheus.Counter
}

type cachedState[S any] struct {
	state   S
	version int64
	at      time.Time
}

// VersionReader reads an aggregate's current version and type (*Store,
// memstore): one read of the partition's static columns.
type VersionReader interface {
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
}

// NewStateCache builds the cache of one aggregate type's states: size
// entries at most, each used for ttl after it was stored. versions reads
// the stored version for Current (nil: Current always loads).
func NewStateCache[S any](aggregateType string, size int, ttl time.Duration, versions VersionReader, reg prometheus.Registerer) (*StateCache[S], error) {
	if size < 1 || ttl <= 0 {
		return nil, fmt.Errorf("eventstore: state cache of %s: size and ttl must be positive, got %d and %s", aggregateType, size, ttl)
	}
	entries, err := lru.New[gocql.UUID, cachedState[S]](size)
	if err != nil {
		return nil, fmt.Errorf("eventstore: state cache of %s: %w", aggregateType, err)
	}
	labels := prometheus.Labels{"aggregate_type": aggregateType}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "event_store", Name: "state_cache_lookups_total",
		Help: "Lookups of an aggregate's state in the state cache, by result: hit, or miss (a command presumes a new aggregate, Current loads).", ConstLabels: labels,
	}, []string{"result"})
	c := &StateCache[S]{
		entries: entries, ttl: ttl, versions: versions, now: time.Now,
		hits: lookups.WithLabelValues("hit"), misses: lookups.WithLabelValues("miss"),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "event_store", Name: "state_cache_stale_total",
			Help: "Cached states found out of date (a lost commit race, a refusal or no-op re-decided on a fresh load, a newer stored version) and dropped.", ConstLabels: labels,
		}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{lookups, c.stale} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("eventstore: registering state cache metrics: %w", err)
			}
		}
	}
	return c, nil
}

// get returns the cached state of id, if there is one younger than the TTL.
func (c *StateCache[S]) get(id gocql.UUID) (S, int64, bool) {
	e, ok := c.entries.Get(id)
	if ok && c.now().Sub(e.at) < c.ttl {
		return e.state, e.version, true
	}
	if ok {
		c.entries.Remove(id)
	}
	var zero S
	return zero, 0, false
}

// put stores the state of id at version, unless a newer one is cached or
// the state is not admitted (then the entry of id is dropped).
func (c *StateCache[S]) put(id gocql.UUID, state S, version int64) {
	if version <= 0 {
		return
	}
	if c.admit != nil && !c.admit(state) {
		c.entries.Remove(id)
		return
	}
	if e, ok := c.entries.Peek(id); ok && e.version > version && c.now().Sub(e.at) < c.ttl {
		return
	}
	c.entries.Add(id, cachedState[S]{state: state, version: version, at: c.now()})
}

// Admit makes the cache keep only the states for which admit is true
// (such as no state holding a value that must not outlive a forget). Call
// it before the cache is used.
func (c *StateCache[S]) Admit(admit func(S) bool) { c.admit = admit }

// Evict drops the cached state of id.
func (c *StateCache[S]) Evict(id gocql.UUID) { c.entries.Remove(id) }

// EvictWhere drops every cached state for which match is true, such as
// the orders of a customer who was just forgotten. It walks the whole
// cache: for rare events only.
func (c *StateCache[S]) EvictWhere(match func(S) bool) int {
	n := 0
	for _, id := range c.entries.Keys() {
		if e, ok := c.entries.Peek(id); ok && match(e.state) {
			c.entries.Remove(id)
			n++
		}
	}
	return n
}

// Len is the number of states cached.
func (c *StateCache[S]) Len() int { return c.entries.Len() }

// UseStateCache makes Handle decide on cached states (nil: none) and
// Current check them against the stored version. Call it before the
// repository is used.
func (r *Repository[S, C, E]) UseStateCache(c *StateCache[S]) { r.cache = c }

// StateCache returns the repository's state cache, nil when it has none.
func (r *Repository[S, C, E]) StateCache() *StateCache[S] { return r.cache }

// Current returns the aggregate's current state and version, like Load,
// for a decision outside the aggregate's own commit (a rule that reads
// one aggregate to decide a command of another): with a state cache, it
// reads only the stored version and uses the cached state when it is at
// that version, else it loads.
func (r *Repository[S, C, E]) Current(ctx context.Context, id gocql.UUID) (S, int64, error) {
	if r.cache == nil || r.cache.versions == nil {
		return r.Load(ctx, id)
	}
	if state, version, ok := r.cache.get(id); ok {
		stored, typ, err := r.cache.versions.Version(ctx, id)
		if err != nil {
			var zero S
			return zero, 0, err
		}
		if stored == version && typ == r.agg.Type {
			r.cache.hits.Inc()
			return state, version, nil
		}
		r.cache.stale.Inc()
		r.cache.Evict(id)
	}
	r.cache.misses.Inc()
	return r.Load(ctx, id)
}

// load is Handle's load: from the state cache unless fresh, else from the
// store (and into the cache). cached tells that the state was not read
// from the store, and so is trusted only through the commit.
//
// An aggregate the cache does not hold is presumed new (the zero state at
// version 0): a create commits at once with its IF NOT EXISTS, without a
// read; on an aggregate that exists the commit loses, or the command is
// refused or a no-op on the zero state, and either way it is decided again
// on a load, which costs what a load would have cost anyway.
func (r *Repository[S, C, E]) load(ctx context.Context, id gocql.UUID, fresh bool) (state S, version int64, cached bool, err error) {
	if r.cache != nil && !fresh {
		if state, version, ok := r.cache.get(id); ok {
			r.cache.hits.Inc()
			return state, version, true, nil
		}
		r.cache.misses.Inc()
		return state, 0, true, nil
	}
	state, version, err = r.Load(ctx, id)
	return state, version, false, err
}

// distrust drops a cached state that led to an answer other than a
// commit, so that the command is decided again on a fresh load. A
// presumed new aggregate was no cached state, and is not counted stale.
func (r *Repository[S, C, E]) distrust(id gocql.UUID) {
	if r.cache != nil && r.cache.entries.Remove(id) {
		r.cache.stale.Inc()
	}
}

// remember caches the state the aggregate reached with a commit or a
// complete load.
func (r *Repository[S, C, E]) remember(id gocql.UUID, state S, version int64) {
	if r.cache != nil {
		r.cache.put(id, state, version)
	}
}

// forget drops the cached state of id after an outcome that leaves the
// stored version unknown (a lost race, a failed commit).
func (r *Repository[S, C, E]) forget(id gocql.UUID) {
	if r.cache != nil {
		r.cache.Evict(id)
	}
}
