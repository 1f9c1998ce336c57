package projector_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// checkpointsContract is what the projector relies on of its checkpoints;
// the CQL checkpoints and their in-memory twin both pass it.
func checkpointsContract(t *testing.T, cps projector.Checkpoints) {
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
}

func TestMemoryCheckpointsContract(t *testing.T) {
	checkpointsContract(t, projector.NewMemoryCheckpoints())
}

func TestCheckpointsContract(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "cps_")
	checkpointsContract(t, projector.NewCheckpoints(session))
}
