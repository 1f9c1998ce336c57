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
// view's rows with it, so that the rows are never behind the checkpoint.
//
// The rows are written first and the checkpoint only once they are
// acknowledged: should the process die, or the checkpoint's write fail, in
// between, the rows are ahead of the checkpoint for a while, never behind.
// That is safe because a view's rows are a deterministic function of (the
// checkpointed state, the events folded into it): the record whose
// checkpoint was not written is not marked consumed, is applied again
// from the old checkpoint, and writes the same rows again. A view whose
// row moves to a key that a write from the old checkpoint to a later
// sequence would neither overwrite nor delete (orders_by_status: a status
// change, or the order's first row) asks for a logged batch by setting
// the batch's Type to gocql.LoggedBatch; its rows and the checkpoint are
// then written in that one batch, atomically, as before.
//
// The CQL implementation (NewCheckpoints) writes projection_checkpoints and
// the view's tables; MemoryCheckpoints is its in-memory twin for unit
// tests.
type Checkpoints interface {
	// Load reads the checkpoint of id; found is false when there is none.
	Load(ctx context.Context, projection string, id gocql.UUID) (seq int64, state string, found bool, err error)
	// Commit writes the rows that rows adds to a batch, then the
	// checkpoint; both in one logged batch if rows sets the batch's Type
	// to gocql.LoggedBatch. A timestamp rows gives the batch
	// (Batch.WithTimestamp) applies to every row and to the checkpoint.
	// An error of rows is returned as a *RowsError: the rows cannot be
	// written, whatever the database does. Any other error may leave the
	// rows written and the checkpoint not.
	Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error
}

// RowsError is a view that could not say which rows to write.
type RowsError struct{ Err error }

func (e *RowsError) Error() string { return "rows: " + e.Err.Error() }
func (e *RowsError) Unwrap() error { return e.Err }

// CheckpointsOption configures NewCheckpoints.
type CheckpointsOption func(*cqlCheckpoints)

// AfterRows makes Commit call f once the rows are written and before the
// checkpoint: an error of f is returned without writing the checkpoint, as
// a crash or a failed write between the two would leave them (rows that
// asked for a logged batch: f is called before it, and an error leaves
// nothing written). It is fault injection, for tests.
func AfterRows(f func() error) CheckpointsOption {
	return func(c *cqlCheckpoints) { c.afterRows = f }
}

// NewCheckpoints returns the checkpoints in session's keyspace.
func NewCheckpoints(session *gocql.Session, opts ...CheckpointsOption) Checkpoints {
	c := &cqlCheckpoints{session: session}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

type cqlCheckpoints struct {
	session   *gocql.Session
	afterRows func() error
}

const updateCheckpoint = `UPDATE projection_checkpoints SET sequence = ?, state = ?, updated_at = ? WHERE projection_name = ? AND aggregate_id = ?`

func (c *cqlCheckpoints) Load(ctx context.Context, projection string, id gocql.UUID) (int64, string, bool, error) {
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

func (c *cqlCheckpoints) Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error {
	b := c.session.Batch(gocql.UnloggedBatch).WithContext(ctx)
	if err := rows(b); err != nil {
		return &RowsError{Err: err}
	}
	cpArgs := []any{seq, state, time.Now().UTC(), projection, id}
	if b.Type == gocql.LoggedBatch {
		if c.afterRows != nil {
			if err := c.afterRows(); err != nil {
				return err // a logged batch lands whole or not at all: here, not
			}
		}
		b.Query(updateCheckpoint, cpArgs...)
		return c.session.ExecuteBatch(b)
	}
	// The checkpoint goes in a copy of the batch (WithContext copies it),
	// which keeps the timestamp rows may have set (gocql offers no way to
	// read it back); the copy shares the driver's attempt count with the
	// rows' batch, so the retry policy's attempts are shared between the
	// two (the projector retries the whole commit besides). The rows, one
	// statement or a batch of a few, are unlogged: a batch of one partition
	// is one mutation, and a batch's coordinator is the first statement's
	// replica.
	cp := b.WithContext(ctx)
	cp.Entries = []gocql.BatchEntry{{Stmt: updateCheckpoint, Args: cpArgs}}
	if len(b.Entries) > 0 {
		if err := c.session.ExecuteBatch(b); err != nil {
			return fmt.Errorf("writing the rows: %w", err)
		}
	}
	if c.afterRows != nil {
		if err := c.afterRows(); err != nil {
			return err
		}
	}
	if err := c.session.ExecuteBatch(cp); err != nil {
		return fmt.Errorf("writing the checkpoint (the rows are written): %w", err)
	}
	return nil
}

// MemoryCheckpoints is the in-memory twin of the CQL checkpoints: it keeps
// each checkpoint, the statements of the rows last written with it, and
// every write of rows in order (Written), including those whose checkpoint
// was not written. Like the CQL implementation it writes the rows first
// and the checkpoint after, unless the rows asked for a logged batch;
// FailAfterRows makes a commit stop in between.
// The zero value is not usable; build it with NewMemoryCheckpoints.
type MemoryCheckpoints struct {
	mu        sync.Mutex
	cps       map[checkpointKey]storedCheckpoint
	written   map[checkpointKey][]RowsWrite
	fail      error
	afterRows error
	loads     int
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

// RowsWrite is one write of an aggregate's rows by MemoryCheckpoints.
type RowsWrite struct {
	Entries []gocql.BatchEntry
	// Logged is set when the rows asked for a logged batch: they were
	// written together with the checkpoint.
	Logged bool
}

// NewMemoryCheckpoints returns empty checkpoints.
func NewMemoryCheckpoints() *MemoryCheckpoints {
	return &MemoryCheckpoints{cps: map[checkpointKey]storedCheckpoint{}, written: map[checkpointKey][]RowsWrite{}}
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

// Commit writes the rows' statements, then the checkpoint with them; both
// at once when the rows set a logged batch.
func (m *MemoryCheckpoints) Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error {
	b := &gocql.Batch{Type: gocql.UnloggedBatch}
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
	key := checkpointKey{projection, id}
	logged := b.Type == gocql.LoggedBatch
	if !logged {
		if len(b.Entries) > 0 {
			m.written[key] = append(m.written[key], RowsWrite{Entries: slices.Clone(b.Entries)})
		}
		if err := m.afterRows; err != nil {
			m.afterRows = nil
			return err
		}
	} else {
		if err := m.afterRows; err != nil {
			m.afterRows = nil
			return err // a logged batch lands whole or not at all: here, not
		}
		m.written[key] = append(m.written[key], RowsWrite{Entries: slices.Clone(b.Entries), Logged: true})
	}
	m.cps[key] = storedCheckpoint{seq: seq, state: state, rows: slices.Clone(b.Entries)}
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

// Written returns every write of the aggregate's rows under projection,
// oldest first, whether or not its checkpoint followed.
func (m *MemoryCheckpoints) Written(projection string, id gocql.UUID) []RowsWrite {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.written[checkpointKey{projection, id}])
}

// Fail makes every Load and Commit fail with err (nil: heal), as an
// unreachable database does.
func (m *MemoryCheckpoints) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// FailAfterRows makes the next Commit fail with err after writing its
// rows and before the checkpoint, as a crash or a failed write between the
// two leaves them (nil: no longer). A commit whose rows asked for a logged
// batch fails with nothing written.
func (m *MemoryCheckpoints) FailAfterRows(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.afterRows = err
}

// Loads is how many times Load was called (the projector caches what it
// wrote, so that the next record of an aggregate needs no read).
func (m *MemoryCheckpoints) Loads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads
}
