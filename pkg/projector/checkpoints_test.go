package projector_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// checkpointsContract is what the projector relies on of its checkpoints;
// the CQL checkpoints and their in-memory twin both pass it. failAfterRows
// makes the next commit fail with err after its rows, before its
// checkpoint (a crash between the two).
func checkpointsContract(t *testing.T, cps projector.Checkpoints, failAfterRows func(err error)) {
	noRows := func(*gocql.Batch) error { return nil }

	t.Run("an aggregate without a checkpoint is not found", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, found, err := cps.Load(ctx, "contract", gocql.TimeUUID())
		require.NoError(t, err)
		require.False(t, found)
	})

	t.Run("a commit is what the next load reads, per projection", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id := gocql.TimeUUID()
		require.NoError(t, cps.Commit(ctx, "contract", id, 1, `{"n":1}`, noRows))
		require.NoError(t, cps.Commit(ctx, "contract", id, 2, `{"n":2}`, noRows))
		seq, state, found, err := cps.Load(ctx, "contract", id)
		require.NoError(t, err)
		require.True(t, found)
		require.EqualValues(t, 2, seq)
		require.JSONEq(t, `{"n":2}`, state)

		_, _, found, err = cps.Load(ctx, "contract-other", id)
		require.NoError(t, err)
		require.False(t, found, "a checkpoint belongs to its projection only")
	})

	t.Run("rows that cannot be said write nothing", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id := gocql.TimeUUID()
		require.NoError(t, cps.Commit(ctx, "contract", id, 1, `{"n":1}`, noRows))
		bad := errors.New("no rows for this state")
		err := cps.Commit(ctx, "contract", id, 2, `{"n":2}`, func(*gocql.Batch) error { return bad })
		var rowsErr *projector.RowsError
		require.ErrorAs(t, err, &rowsErr)
		require.ErrorIs(t, err, bad)
		seq, state, found, err := cps.Load(ctx, "contract", id)
		require.NoError(t, err)
		require.True(t, found)
		require.EqualValues(t, 1, seq, "the checkpoint stays where it was")
		require.JSONEq(t, `{"n":1}`, state)
	})

	t.Run("a done context fails the commit", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.Error(t, cps.Commit(ctx, "contract", gocql.TimeUUID(), 1, `{}`, noRows))
	})

	// The rows are written before the checkpoint: a crash in between
	// leaves the checkpoint where it was, and the same commit again (the
	// record is consumed again) writes it.
	for _, tt := range []struct {
		name string
		rows func(*gocql.Batch) error
	}{
		{"without rows", noRows},
		{"with rows", func(b *gocql.Batch) error {
			b.Query(`UPDATE projection_checkpoints SET sequence = 1 WHERE projection_name = 'contract-rows' AND aggregate_id = ?`, gocql.TimeUUID())
			return nil
		}},
		{"with rows in a logged batch", func(b *gocql.Batch) error {
			b.Type = gocql.LoggedBatch
			b.Query(`UPDATE projection_checkpoints SET sequence = 1 WHERE projection_name = 'contract-rows' AND aggregate_id = ?`, gocql.TimeUUID())
			return nil
		}},
	} {
		t.Run("a crash between the rows and the checkpoint, "+tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id := gocql.TimeUUID()
			require.NoError(t, cps.Commit(ctx, "contract", id, 1, `{"n":1}`, tt.rows))
			crash := errors.New("crashed after the rows")
			failAfterRows(crash)
			require.ErrorIs(t, cps.Commit(ctx, "contract", id, 2, `{"n":2}`, tt.rows), crash)
			seq, state, found, err := cps.Load(ctx, "contract", id)
			require.NoError(t, err)
			require.True(t, found)
			require.EqualValues(t, 1, seq, "the checkpoint stays where it was")
			require.JSONEq(t, `{"n":1}`, state)

			require.NoError(t, cps.Commit(ctx, "contract", id, 2, `{"n":2}`, tt.rows), "the failure was for one commit only")
			seq, state, _, err = cps.Load(ctx, "contract", id)
			require.NoError(t, err)
			require.EqualValues(t, 2, seq)
			require.JSONEq(t, `{"n":2}`, state)
		})
	}
}

// failOnce is an error returned once.
type failOnce struct {
	mu  sync.Mutex
	err error
}

func (f *failOnce) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *failOnce) take() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.err
	f.err = nil
	return err
}

func TestMemoryCheckpointsContract(t *testing.T) {
	cps := projector.NewMemoryCheckpoints()
	checkpointsContract(t, cps, cps.FailAfterRows)
}

func TestCheckpointsContract(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "cps_")
	var crash failOnce
	checkpointsContract(t, projector.NewCheckpoints(session, projector.AfterRows(crash.take)), crash.set)
}

// The twin keeps every write of rows: those of a commit that crashed
// before its checkpoint too, unless they asked for a logged batch.
func TestMemoryCheckpointsRowsAheadOfTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	cps := projector.NewMemoryCheckpoints()
	id := gocql.TimeUUID()
	row := func(v int, logged bool) func(*gocql.Batch) error {
		return func(b *gocql.Batch) error {
			if logged {
				b.Type = gocql.LoggedBatch
			}
			b.Query("row", v)
			return nil
		}
	}
	require.NoError(t, cps.Commit(ctx, "v", id, 1, `{}`, row(1, false)))
	crash := errors.New("crash")
	cps.FailAfterRows(crash)
	require.ErrorIs(t, cps.Commit(ctx, "v", id, 2, `{}`, row(2, false)), crash)
	cps.FailAfterRows(crash)
	require.ErrorIs(t, cps.Commit(ctx, "v", id, 2, `{}`, row(3, true)), crash)
	require.NoError(t, cps.Commit(ctx, "v", id, 2, `{}`, row(4, true)))

	entry := func(v int) []gocql.BatchEntry { return []gocql.BatchEntry{{Stmt: "row", Args: []any{v}}} }
	require.Equal(t, []projector.RowsWrite{{Entries: entry(1)}, {Entries: entry(2)}, {Entries: entry(4), Logged: true}}, cps.Written("v", id),
		"the rows of the crashed unlogged commit are written, those of the crashed logged one are not")
	seq, _, rows, found := cps.Get("v", id)
	require.True(t, found)
	require.EqualValues(t, 2, seq)
	require.Equal(t, entry(4), rows)
}

// Against Cassandra: the rows land before the checkpoint (a crash in
// between leaves them written), and a timestamp the rows give the batch
// (a rebuild's writeTimestamp) is the write time of every row and of the
// checkpoint, logged or not.
func TestCheckpointsRowsFirstAndTimestamps(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "cpsts_")
	var crash failOnce
	cps := projector.NewCheckpoints(session, projector.AfterRows(crash.take))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const rowsView = "contract-rows" // rows of a "view" in a table every keyspace has
	writeTime := func(projection string, id gocql.UUID) (seq, ts int64) {
		t.Helper()
		require.NoError(t, session.Query(`SELECT sequence, WRITETIME(state) FROM projection_checkpoints WHERE projection_name = ? AND aggregate_id = ?`, projection, id).
			WithContext(ctx).Scan(&seq, &ts))
		return seq, ts
	}
	for _, logged := range []bool{false, true} {
		id, other := gocql.TimeUUID(), gocql.TimeUUID()
		rows := func(ts, seq int64) func(*gocql.Batch) error {
			return func(b *gocql.Batch) error {
				if logged {
					b.Type = gocql.LoggedBatch
				}
				if ts != 0 {
					b.WithTimestamp(ts)
				}
				b.Query(`UPDATE projection_checkpoints SET sequence = ?, state = '' WHERE projection_name = ? AND aggregate_id = ?`, seq, rowsView, id)
				b.Query(`UPDATE projection_checkpoints SET sequence = ?, state = '' WHERE projection_name = ? AND aggregate_id = ?`, seq, rowsView, other)
				return nil
			}
		}
		base := time.Now().Add(-time.Hour).UnixMicro()
		require.NoError(t, cps.Commit(ctx, "contract", id, 1, `{}`, rows(base+1, 1)))
		for _, rid := range []gocql.UUID{id, other} {
			seq, ts := writeTime(rowsView, rid)
			require.EqualValues(t, 1, seq)
			require.Equal(t, base+1, ts, "logged %t: a row's write time", logged)
		}
		seq, ts := writeTime("contract", id)
		require.EqualValues(t, 1, seq)
		require.Equal(t, base+1, ts, "logged %t: the checkpoint's write time", logged)

		crash.set(errors.New("crash"))
		require.Error(t, cps.Commit(ctx, "contract", id, 2, `{}`, rows(base+2, 2)))
		seq, _ = writeTime(rowsView, id)
		if logged {
			require.EqualValues(t, 1, seq, "a logged batch lands whole or not at all")
		} else {
			require.EqualValues(t, 2, seq, "the rows are written before the checkpoint")
		}
		seq, ts = writeTime("contract", id)
		require.EqualValues(t, 1, seq)
		require.Equal(t, base+1, ts)

		// Without a timestamp, the checkpoint is written after the rows.
		require.NoError(t, cps.Commit(ctx, "contract", id, 3, `{}`, rows(0, 3)))
		_, rowTS := writeTime(rowsView, id)
		seq, ts = writeTime("contract", id)
		require.EqualValues(t, 3, seq)
		require.GreaterOrEqual(t, ts, rowTS, "logged %t", logged)
		require.Greater(t, rowTS, base+2)
	}
}
