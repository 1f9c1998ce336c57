package projector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gocql/gocql"
)

// Generations is what projection_generations holds of one view (schema
// v0007): which generation of its tables readers use, which one a rebuild
// is writing, and which old ones are kept a while after a switch.
type Generations struct {
	// Active is the generation readers use and projectors keep current; 1
	// (the tables of schema/v0001_initial) until the first rebuild.
	Active int
	// Last is the highest generation ever created: a rebuild writes
	// Last+1, so that a generation's name (and the checkpoints under it)
	// is never reused, not even after a cancelled rebuild.
	Last int
	// Building is the generation a rebuild is writing, 0 when none.
	Building int
	// Owner is the member running the rebuild's scan; Heartbeat when it
	// last said so. Another member takes the scan over when the heartbeat
	// is older than rebuild_takeover.
	Owner     string
	Heartbeat time.Time
	StartedAt time.Time
	// WriteBase is the write timestamp (µs) the building generation's
	// writes add the aggregate's sequence to (writeTimestamp).
	WriteBase int64
	// RangesTotal is how many token ranges the rebuild's scan has.
	RangesTotal int
	// Retiring are the generations replaced (or cancelled), each with the
	// time after which it is dropped. Until then projectors keep it
	// current and readers holding a page token of it may read it.
	Retiring map[int]time.Time
}

// Readable reports whether readers may read generation gen: the active
// one, or one retiring and not yet due to be dropped.
func (g Generations) Readable(gen int, now time.Time) bool {
	if gen == g.Active {
		return true
	}
	until, ok := g.Retiring[gen]
	return ok && now.Before(until)
}

// written are the generations the projectors write, newest first: the
// building one, the active one, and the retiring ones not yet due.
func (g Generations) written(now time.Time) []int {
	gens := []int{g.Active}
	if g.Building != 0 {
		gens = append(gens, g.Building)
	}
	for gen, until := range g.Retiring {
		if now.Before(until) && gen != g.Active && gen != g.Building {
			gens = append(gens, gen)
		}
	}
	slices.Sort(gens)
	slices.Reverse(gens)
	return gens
}

// RangeProgress is one finished token range of a rebuild's scan.
type RangeProgress struct {
	Aggregates, Events int64
}

// ErrGenerationConflict is a rebuild state change that lost a race (a
// rebuild already running, cancelled meanwhile, taken over).
var ErrGenerationConflict = errors.New("the generation state changed meanwhile")

// GenerationStore keeps the views' generations and the progress of their
// rebuilds. NewGenerationStore is the CQL implementation (changes are
// lightweight transactions), MemoryGenerations its in-memory twin.
type GenerationStore interface {
	// Load reads a view's generations: Active 1 and Last 1 when it has no
	// row yet.
	Load(ctx context.Context, view string) (Generations, error)
	// Begin marks generation next = cur.Last+1 as building, if no rebuild
	// runs and nothing changed since cur was read; else
	// ErrGenerationConflict.
	Begin(ctx context.Context, view string, cur Generations, owner string, writeBase int64, ranges int, now time.Time) (Generations, error)
	// Heartbeat renews the owner's hold on the building generation gen;
	// false when it is no longer building it (cancelled, taken over).
	Heartbeat(ctx context.Context, view string, gen int, owner string, now time.Time) (bool, error)
	// TakeOver hands the building generation's scan from a silent owner
	// (whose last heartbeat was heartbeat) to owner.
	TakeOver(ctx context.Context, view string, gen int, from string, heartbeat time.Time, owner string, now time.Time) (bool, error)
	// RangeDone records a finished token range of generation gen's scan.
	RangeDone(ctx context.Context, view string, gen, index int, p RangeProgress) error
	// RangesDone reads the finished ranges of generation gen's scan.
	RangesDone(ctx context.Context, view string, gen int) (map[int]RangeProgress, error)
	// Switch makes the building generation to active, retiring from
	// (dropped after dropAfter), if from is still active and to building.
	Switch(ctx context.Context, view string, from, to int, dropAfter time.Time) (bool, error)
	// Cancel stops the building generation gen: it retires at once.
	Cancel(ctx context.Context, view string, gen int, now time.Time) (bool, error)
	// Dropped forgets a retired generation whose tables are dropped.
	Dropped(ctx context.Context, view string, gen int) error
	// Exec runs a schema statement (CREATE TABLE, DROP TABLE).
	Exec(ctx context.Context, stmt string) error
	// DeleteCheckpoint deletes one checkpoint of a dropped generation.
	DeleteCheckpoint(ctx context.Context, projection string, id gocql.UUID) error
}

// ReadGenerations reads every view's generations, by view name (a view
// without a row is at generation 1): what query-service caches to choose
// the tables it reads.
func ReadGenerations(ctx context.Context, session *gocql.Session) (map[string]Generations, error) {
	iter := session.Query(`SELECT projection_name, active, last_generation, building, owner, heartbeat_at, started_at, write_base, ranges_total, retiring FROM projection_generations`).
		WithContext(ctx).Idempotent(true).Iter()
	out := map[string]Generations{}
	var (
		name string
		g    generationRow
	)
	for iter.Scan(append([]any{&name}, g.dest()...)...) {
		out[name] = g.generations()
		g = generationRow{}
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading projection_generations: %w", err)
	}
	return out, nil
}

// NewGenerationStore returns the generations in session's keyspace.
func NewGenerationStore(session *gocql.Session) GenerationStore {
	return cqlGenerations{session: session}
}

type cqlGenerations struct{ session *gocql.Session }

type generationRow struct {
	active, last, building, ranges *int
	owner                          *string
	heartbeat, started             time.Time
	writeBase                      *int64
	retiring                       map[int]time.Time
}

func (r *generationRow) dest() []any {
	return []any{&r.active, &r.last, &r.building, &r.owner, &r.heartbeat, &r.started, &r.writeBase, &r.ranges, &r.retiring}
}

func (r generationRow) generations() Generations {
	g := Generations{Active: 1, Last: 1, Heartbeat: r.heartbeat, StartedAt: r.started, Retiring: r.retiring}
	if r.active != nil && *r.active > 0 {
		g.Active = *r.active
	}
	if r.last != nil && *r.last > 0 {
		g.Last = *r.last
	}
	if r.building != nil {
		g.Building = *r.building
	}
	if r.owner != nil {
		g.Owner = *r.owner
	}
	if r.writeBase != nil {
		g.WriteBase = *r.writeBase
	}
	if r.ranges != nil {
		g.RangesTotal = *r.ranges
	}
	return g
}

const selectGenerations = `SELECT active, last_generation, building, owner, heartbeat_at, started_at, write_base, ranges_total, retiring FROM projection_generations WHERE projection_name = ?`

func (c cqlGenerations) Load(ctx context.Context, view string) (Generations, error) {
	var r generationRow
	err := c.session.Query(selectGenerations, view).WithContext(ctx).Idempotent(true).Scan(r.dest()...)
	if errors.Is(err, gocql.ErrNotFound) {
		return Generations{Active: 1, Last: 1}, nil
	}
	if err != nil {
		return Generations{}, fmt.Errorf("reading the generations of %s: %w", view, err)
	}
	return r.generations(), nil
}

// cas runs a lightweight transaction and reports whether it applied.
func (c cqlGenerations) cas(ctx context.Context, stmt string, args ...any) (bool, error) {
	applied, err := c.session.Query(stmt, args...).WithContext(ctx).SerialConsistency(gocql.LocalSerial).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("updating projection_generations: %w", err)
	}
	return applied, nil
}

func (c cqlGenerations) Begin(ctx context.Context, view string, cur Generations, owner string, writeBase int64, ranges int, now time.Time) (Generations, error) {
	// The row is created at generation 1 first, so that the condition
	// below has a row to hold on.
	if _, err := c.cas(ctx, `INSERT INTO projection_generations (projection_name, active, last_generation, updated_at) VALUES (?, 1, 1, ?) IF NOT EXISTS`, view, now); err != nil {
		return Generations{}, err
	}
	next := cur.Last + 1
	ok, err := c.cas(ctx, `UPDATE projection_generations SET building = ?, last_generation = ?, owner = ?, heartbeat_at = ?, started_at = ?, write_base = ?, ranges_total = ?, updated_at = ?
		WHERE projection_name = ? IF building = null AND last_generation = ? AND active = ?`,
		next, next, owner, now, now, writeBase, ranges, now, view, cur.Last, cur.Active)
	if err != nil {
		return Generations{}, err
	}
	if !ok {
		return Generations{}, ErrGenerationConflict
	}
	return c.Load(ctx, view)
}

func (c cqlGenerations) Heartbeat(ctx context.Context, view string, gen int, owner string, now time.Time) (bool, error) {
	return c.cas(ctx, `UPDATE projection_generations SET heartbeat_at = ?, updated_at = ? WHERE projection_name = ? IF building = ? AND owner = ?`, now, now, view, gen, owner)
}

func (c cqlGenerations) TakeOver(ctx context.Context, view string, gen int, from string, heartbeat time.Time, owner string, now time.Time) (bool, error) {
	return c.cas(ctx, `UPDATE projection_generations SET owner = ?, heartbeat_at = ?, updated_at = ? WHERE projection_name = ? IF building = ? AND owner = ? AND heartbeat_at = ?`,
		owner, now, now, view, gen, from, heartbeat)
}

func (c cqlGenerations) RangeDone(ctx context.Context, view string, gen, index int, p RangeProgress) error {
	err := c.session.Query(`INSERT INTO projection_rebuild_ranges (projection_name, generation, range_index, aggregates, events, finished_at) VALUES (?, ?, ?, ?, ?, ?)`,
		view, gen, index, p.Aggregates, p.Events, time.Now().UTC()).WithContext(ctx).Idempotent(true).Exec()
	if err != nil {
		return fmt.Errorf("recording range %d of the rebuild of %s: %w", index, view, err)
	}
	return nil
}

func (c cqlGenerations) RangesDone(ctx context.Context, view string, gen int) (map[int]RangeProgress, error) {
	iter := c.session.Query(`SELECT range_index, aggregates, events FROM projection_rebuild_ranges WHERE projection_name = ? AND generation = ?`, view, gen).
		WithContext(ctx).Idempotent(true).Iter()
	out := map[int]RangeProgress{}
	var (
		index int
		p     RangeProgress
	)
	for iter.Scan(&index, &p.Aggregates, &p.Events) {
		out[index] = p
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading the rebuild ranges of %s: %w", view, err)
	}
	return out, nil
}

func (c cqlGenerations) Switch(ctx context.Context, view string, from, to int, dropAfter time.Time) (bool, error) {
	return c.cas(ctx, `UPDATE projection_generations SET active = ?, building = null, owner = null, retiring[?] = ?, updated_at = ? WHERE projection_name = ? IF active = ? AND building = ?`,
		to, from, dropAfter, time.Now().UTC(), view, from, to)
}

func (c cqlGenerations) Cancel(ctx context.Context, view string, gen int, now time.Time) (bool, error) {
	return c.cas(ctx, `UPDATE projection_generations SET building = null, owner = null, retiring[?] = ?, updated_at = ? WHERE projection_name = ? IF building = ?`,
		gen, now, now, view, gen)
}

func (c cqlGenerations) Dropped(ctx context.Context, view string, gen int) error {
	if err := c.session.Query(`DELETE retiring[?] FROM projection_generations WHERE projection_name = ?`, gen, view).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("forgetting generation %d of %s: %w", gen, view, err)
	}
	if err := c.session.Query(`DELETE FROM projection_rebuild_ranges WHERE projection_name = ? AND generation = ?`, view, gen).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("forgetting the rebuild ranges of generation %d of %s: %w", gen, view, err)
	}
	return nil
}

func (c cqlGenerations) Exec(ctx context.Context, stmt string) error {
	return c.session.Query(stmt).WithContext(ctx).Exec()
}

func (c cqlGenerations) DeleteCheckpoint(ctx context.Context, projection string, id gocql.UUID) error {
	return c.session.Query(`DELETE FROM projection_checkpoints WHERE projection_name = ? AND aggregate_id = ?`, projection, id).WithContext(ctx).Idempotent(true).Exec()
}

// MemoryGenerations is the in-memory twin of the CQL generation store,
// for unit tests: it keeps the rows and the schema statements run.
type MemoryGenerations struct {
	mu     sync.Mutex
	gens   map[string]Generations
	ranges map[string]map[int]RangeProgress
	stmts  []string
	fail   error
}

// NewMemoryGenerations returns an empty store: every view at generation 1.
func NewMemoryGenerations() *MemoryGenerations {
	return &MemoryGenerations{gens: map[string]Generations{}, ranges: map[string]map[int]RangeProgress{}}
}

// Fail makes every call fail with err (nil: heal).
func (m *MemoryGenerations) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Statements returns the schema statements run so far.
func (m *MemoryGenerations) Statements() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.stmts)
}

func (m *MemoryGenerations) load(view string) Generations {
	g, ok := m.gens[view]
	if !ok {
		return Generations{Active: 1, Last: 1}
	}
	g.Retiring = maps.Clone(g.Retiring)
	return g
}

// Load reads a view's generations.
func (m *MemoryGenerations) Load(ctx context.Context, view string) (Generations, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Generations{}, m.fail
	}
	return m.load(view), ctx.Err()
}

// Begin starts building the next generation.
func (m *MemoryGenerations) Begin(_ context.Context, view string, cur Generations, owner string, writeBase int64, ranges int, now time.Time) (Generations, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Generations{}, m.fail
	}
	g := m.load(view)
	if g.Building != 0 || g.Last != cur.Last || g.Active != cur.Active {
		return Generations{}, ErrGenerationConflict
	}
	g.Last++
	g.Building, g.Owner, g.Heartbeat, g.StartedAt, g.WriteBase, g.RangesTotal = g.Last, owner, now, now, writeBase, ranges
	m.gens[view] = g
	return m.load(view), nil
}

// Heartbeat renews the owner's hold.
func (m *MemoryGenerations) Heartbeat(_ context.Context, view string, gen int, owner string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	g := m.load(view)
	if g.Building != gen || g.Owner != owner {
		return false, nil
	}
	g.Heartbeat = now
	m.gens[view] = g
	return true, nil
}

// TakeOver hands the scan to owner.
func (m *MemoryGenerations) TakeOver(_ context.Context, view string, gen int, from string, heartbeat time.Time, owner string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	g := m.load(view)
	if g.Building != gen || g.Owner != from || !g.Heartbeat.Equal(heartbeat) {
		return false, nil
	}
	g.Owner, g.Heartbeat = owner, now
	m.gens[view] = g
	return true, nil
}

// RangeDone records a finished range.
func (m *MemoryGenerations) RangeDone(_ context.Context, view string, gen, index int, p RangeProgress) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	key := fmt.Sprintf("%s/%d", view, gen)
	if m.ranges[key] == nil {
		m.ranges[key] = map[int]RangeProgress{}
	}
	m.ranges[key][index] = p
	return nil
}

// RangesDone reads the finished ranges.
func (m *MemoryGenerations) RangesDone(_ context.Context, view string, gen int) (map[int]RangeProgress, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	return maps.Clone(m.ranges[fmt.Sprintf("%s/%d", view, gen)]), nil
}

// Switch makes to active.
func (m *MemoryGenerations) Switch(_ context.Context, view string, from, to int, dropAfter time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	g := m.load(view)
	if g.Active != from || g.Building != to {
		return false, nil
	}
	g.Active, g.Building, g.Owner = to, 0, ""
	if g.Retiring == nil {
		g.Retiring = map[int]time.Time{}
	}
	g.Retiring[from] = dropAfter
	m.gens[view] = g
	return true, nil
}

// Cancel retires the building generation at once.
func (m *MemoryGenerations) Cancel(_ context.Context, view string, gen int, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	g := m.load(view)
	if g.Building != gen {
		return false, nil
	}
	g.Building, g.Owner = 0, ""
	if g.Retiring == nil {
		g.Retiring = map[int]time.Time{}
	}
	g.Retiring[gen] = now
	m.gens[view] = g
	return true, nil
}

// Dropped forgets a dropped generation.
func (m *MemoryGenerations) Dropped(_ context.Context, view string, gen int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	g := m.load(view)
	delete(g.Retiring, gen)
	m.gens[view] = g
	delete(m.ranges, fmt.Sprintf("%s/%d", view, gen))
	return nil
}

// Exec records a schema statement.
func (m *MemoryGenerations) Exec(_ context.Context, stmt string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.stmts = append(m.stmts, stmt)
	return nil
}

// DeleteCheckpoint does nothing: the memory checkpoints are the test's.
func (m *MemoryGenerations) DeleteCheckpoint(context.Context, string, gocql.UUID) error { return nil }
