package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/stacktest"
)

// This file tests the database and the driver, not Store: it writes
// event_store by hand, and lives here because only pkg/eventstore names
// that table.

// The commit DESIGN.md rests on: one single-partition conditional batch
// that checks and advances the static current_sequence and inserts the
// event rows. It applies once; replayed, it is rejected and the database
// returns the current value.
func TestConditionalBatchAppliesOnceAndReturnsCurrentValue(t *testing.T) {
	s := stacktest.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := gocql.UUID(uuid.New())

	commit := func(expected, next int64) (bool, map[string]any, error) {
		b := s.Batch(gocql.LoggedBatch).WithContext(ctx).SerialConsistency(gocql.LocalSerial)
		if expected == 0 {
			b.Query(`INSERT INTO event_store (aggregate_id, aggregate_type, current_sequence, updated_at) VALUES (?, 'order', ?, toTimestamp(now())) IF NOT EXISTS`, id, next)
		} else {
			b.Query(`UPDATE event_store SET current_sequence = ?, updated_at = toTimestamp(now()) WHERE aggregate_id = ? IF current_sequence = ?`, next, id, expected)
		}
		for seq := expected + 1; seq <= next; seq++ {
			b.Query(`INSERT INTO event_store (aggregate_id, sequence_number, event_id, event_type, event_version, event_data) VALUES (?, ?, ?, 'OrderTest', 1, '{}')`,
				id, seq, gocql.UUID(uuid.New()))
		}
		current := map[string]any{}
		applied, iter, err := s.MapExecuteBatchCAS(b, current)
		if iter != nil {
			_ = iter.Close()
		}
		return applied, current, err
	}

	applied, _, err := commit(0, 2)
	require.NoError(t, err)
	require.True(t, applied, "the first commit of a new aggregate applies")

	applied, current, err := commit(0, 2)
	require.NoError(t, err)
	require.False(t, applied, "the same commit again is rejected")
	require.EqualValues(t, 2, current["current_sequence"], "the rejection carries the current version")

	applied, _, err = commit(2, 3)
	require.NoError(t, err)
	require.True(t, applied)

	applied, current, err = commit(2, 3)
	require.NoError(t, err)
	require.False(t, applied, "a stale expected version is rejected")
	require.EqualValues(t, 3, current["current_sequence"])

	var seqs []int64
	iter := s.Query(`SELECT sequence_number FROM event_store WHERE aggregate_id = ?`, id).WithContext(ctx).PageSize(100).Iter()
	var seq int64
	for iter.Scan(&seq) {
		seqs = append(seqs, seq)
	}
	require.NoError(t, iter.Close())
	require.Equal(t, []int64{1, 2, 3}, seqs, "rejected batches wrote no event row")
}
