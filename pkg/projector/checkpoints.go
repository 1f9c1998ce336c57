package projector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gocql/gocql"
)

// Checkpoints keeps a projector's checkpoint of each aggregate (the last
// applied sequence and the state folded so far, as JSON) and writes the
// view's rows together with it, so that the two never disagree. The CQL
// implementation (NewCheckpoints) writes them in one logged batch to
// projection_checkpoints and the view's tables; MemoryCheckpoints is its
// in-memory twin for unit tests.
type Checkpoints interface {
	// Load reads the checkpoint of id; found is false when there is none.
	Load(ctx context.Context, projection string, id gocql.UUID) (seq int64, state string, found bool, err error)
	// Commit writes the rows that rows adds to a batch and the checkpoint,
	// at once. An error of rows is returned as a *RowsError: the rows
	// cannot be written, whatever the database does.
	Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error
}

// RowsError is a view that could not say which rows to write.
type RowsError struct{ Err error }

func (e *RowsError) Error() string { return "rows: " + e.Err.Error() }
func (e *RowsError) Unwrap() error { return e.Err }

// NewCheckpoints returns the checkpoints in session's keyspace.
func NewCheckpoints(session *gocql.Session) Checkpoints { return cqlCheckpoints{session: session} }

type cqlCheckpoints struct{ session *gocql.Session }

func (c cqlCheckpoints) Load(ctx context.Context, projection string, id gocql.UUID) (int64, string, bool, error) {
	var (
		seq   int64
		state string
	)
	err := c.session.Query(`SELECT sequence, state FROM projection_checkpoints WHERE projection_name = ? AND aggregate_id = ?`, projection, id).
		WithContext(ctx).Idempotent(true).Scan(&seq, &state)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("reading the checkpoint of %s: %w", id, err)
	}
	return seq, state, true, nil
}

func (c cqlCheckpoints) Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error {
	b := c.session.Batch(gocql.LoggedBatch).WithContext(ctx)
	if err := rows(b); err != nil {
		return &RowsError{Err: err}
	}
	b.Query(`UPDATE projection_checkpoints SET sequence = ?, state = ?, updated_at = ? WHERE projection_name = ? AND aggregate_id = ?`,
		seq, state, time.Now().UTC(), projection, id)
	return c.session.ExecuteBatch(b)
}

// MemoryCheckpoints is the in-memory twin of the CQL checkpoints: it keeps
// each checkpoint and the statements of the rows last written with it.
// The zero value is not usable; build it with NewMemoryCheckpoints.
type MemoryCheckpoints struct {
	mu    sync.Mutex
	cps   map[checkpointKey]storedCheckpoint
	fail  error
	loads int
}

type checkpointKey struct {
	projection string
	id         gocql.UUID
}

type storedCheckpoint struct {
	seq   int64
	state string
	rows  []gocql.BatchEntry
}

// NewMemoryCheckpoints returns empty checkpoints.
func NewMemoryCheckpoints() *MemoryCheckpoints {
	return &MemoryCheckpoints{cps: map[checkpointKey]storedCheckpoint{}}
}

// Load reads a checkpoint.
func (m *MemoryCheckpoints) Load(ctx context.Context, projection string, id gocql.UUID) (int64, string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.fail != nil {
		return 0, "", false, m.fail
	}
	cp, ok := m.cps[checkpointKey{projection, id}]
	return cp.seq, cp.state, ok, ctx.Err()
}

// Commit keeps the checkpoint and the rows' statements.
func (m *MemoryCheckpoints) Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error {
	b := new(gocql.Batch)
	if err := rows(b); err != nil {
		return &RowsError{Err: err}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.cps[checkpointKey{projection, id}] = storedCheckpoint{seq: seq, state: state, rows: slices.Clone(b.Entries)}
	return nil
}

// Put stores a checkpoint as another member (or an older version of the
// code) would have written it.
func (m *MemoryCheckpoints) Put(projection string, id gocql.UUID, seq int64, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps[checkpointKey{projection, id}] = storedCheckpoint{seq: seq, state: state}
}

// Get returns a checkpoint and the statements of the rows last written
// with it.
func (m *MemoryCheckpoints) Get(projection string, id gocql.UUID) (seq int64, state string, rows []gocql.BatchEntry, found bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.cps[checkpointKey{projection, id}]
	return cp.seq, cp.state, slices.Clone(cp.rows), ok
}

// Fail makes every Load and Commit fail with err (nil: heal), as an
// unreachable database does.
func (m *MemoryCheckpoints) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Loads is how many times Load was called (the projector caches what it
// wrote, so that the next record of an aggregate needs no read).
func (m *MemoryCheckpoints) Loads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads
}
