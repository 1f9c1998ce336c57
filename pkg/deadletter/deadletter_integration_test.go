package deadletter_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/deadletter/deadlettertest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The contract against Cassandra, each subtest in a keyspace of its own.
func TestStoreContract(t *testing.T) {
	deadlettertest.Suite(t, func(t *testing.T) deadlettertest.Store {
		s, c := stacktest.PrivateKeyspace(t, "dl_")
		return deadletter.NewStore(s, c.Keyspace)
	})
}

func count(t *testing.T, s *gocql.Session, stmt string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, s.Query(stmt, args...).Scan(&n))
	return n
}

// A dead letter has its rows in the query tables, once however often it
// failed, and its deletion removes them (the contract shows the rest).
func TestParkTwiceIsOneDeadLetter(t *testing.T) {
	ctx := context.Background()
	s, c := stacktest.PrivateKeyspace(t, "dl_")
	// A session bound to another keyspace: the store names its own.
	st := deadletter.NewStore(stacktest.Session(t), c.Keyspace)
	agg := gocql.UUID(uuid.New())
	e := deadlettertest.Event(agg, 3, "OrderConfirmed")
	first, err := st.Park(ctx, "projector/x", e, errors.New("boom 1"))
	require.NoError(t, err)
	_, err = st.Park(ctx, "projector/x", e, errors.New("boom 2"))
	require.NoError(t, err)
	_, err = st.Park(ctx, "relay", e, errors.New("boom"))
	require.NoError(t, err)
	got, found, err := st.Get(ctx, first)
	require.NoError(t, err)
	require.True(t, found)

	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letter_queue`))
	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letters_by_aggregate WHERE aggregate_id = ?`, agg))
	require.Equal(t, 2, count(t, s, `SELECT count(*) FROM dead_letters_by_event_type WHERE event_type = ?`, "OrderConfirmed"))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letters_by_component WHERE component = ?`, "relay"))

	require.NoError(t, st.Delete(ctx, got.Summary()))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letter_queue`))
	require.Equal(t, 1, count(t, s, `SELECT count(*) FROM dead_letters_by_aggregate WHERE aggregate_id = ?`, agg))
	require.Equal(t, 0, count(t, s, `SELECT count(*) FROM dead_letters_by_component WHERE component = ?`, "projector/x"))
}

// The merge of component partitions relies on ordering ids as the
// database does, ties of timestamp included.
func TestCompareTimeUUIDMatchesTheDatabase(t *testing.T) {
	s, _ := stacktest.PrivateKeyspace(t, "dl_")
	now := time.Now()
	var want []gocql.UUID
	for i := range 40 {
		at := now.Add(time.Duration(i%5) * time.Microsecond) // ties of timestamp
		u := gocql.TimeUUIDWith(gocql.UUIDFromTime(at).Timestamp(), uint32(i*977), []byte{byte(i * 37), byte(i), 0x80, 0x7f, byte(255 - i), 1})
		want = append(want, u)
		require.NoError(t, s.Query(`INSERT INTO dead_letters_by_component (component, id) VALUES ('c', ?)`, u).Exec())
	}
	sort.Slice(want, func(i, j int) bool { return deadletter.CompareTimeUUID(want[i], want[j]) > 0 })
	iter := s.Query(`SELECT id FROM dead_letters_by_component WHERE component = 'c'`).Iter()
	var got []gocql.UUID
	var u gocql.UUID
	for iter.Scan(&u) {
		got = append(got, u)
	}
	require.NoError(t, iter.Close())
	require.Equal(t, want, got)
}

// Backfill writes the query-table rows of dead letters written without
// them (before schema v0004), once.
func TestBackfill(t *testing.T) {
	ctx := context.Background()
	s, c := stacktest.PrivateKeyspace(t, "dl_")
	st := deadletter.NewStore(s, c.Keyspace)
	id := gocql.TimeUUID()
	agg := gocql.UUID(uuid.New())
	require.NoError(t, s.Query(`INSERT INTO dead_letter_queue (id, component, aggregate_id, event_type, sequence_number, parks_aggregate, error_message, failure_count) VALUES (?, 'relay', ?, 'OrderCreated', 1, true, 'old', 1)`, id, agg).Exec())
	n, err := st.Backfill(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = st.Backfill(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	page, err := st.List(ctx, deadletter.Filter{AggregateID: agg}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, "old", page.Entries[0].Error)
}

// The dead letters of the retrier's test were all deleted from the table
// itself, not only from what the store reads.
func TestRetrierLeavesNoRows(t *testing.T) {
	ctx := context.Background()
	s, c := stacktest.PrivateKeyspace(t, "dl_")
	st := deadletter.NewStore(s, c.Keyspace)
	e := deadlettertest.Event(gocql.UUID(uuid.New()), 1, "OrderShipped")
	id, err := st.Park(ctx, "projector/x", e, errors.New("bad"))
	require.NoError(t, err)
	got, _, err := st.Get(ctx, id)
	require.NoError(t, err)
	_, err = st.Settle(ctx, got, deadletter.Outcome{Progress: 1, Head: 1, Applied: 1})
	require.NoError(t, err)
	require.Equal(t, 0, count(t, s, `SELECT count(*) FROM dead_letter_queue`))
	require.Equal(t, 0, count(t, s, `SELECT count(*) FROM parked_aggregates`))
}
