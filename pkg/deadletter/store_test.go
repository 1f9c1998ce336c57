package deadletter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Every table a statement names is qualified with the store's keyspace,
// wherever it stands, and nothing else is touched.
func TestStatementsNameTheKeyspace(t *testing.T) {
	s := NewStore(nil, "ks")
	for in, want := range map[string]string{
		`SELECT component FROM parked_aggregates`:                                      `SELECT component FROM ks.parked_aggregates`,
		`SELECT ` + entryColumns + ` FROM dead_letter_queue WHERE id = ?`:              `SELECT ` + entryColumns + ` FROM ks.dead_letter_queue WHERE id = ?`,
		`INSERT INTO dead_letters_by_component (component, id) VALUES (?, ?)`:          `INSERT INTO ks.dead_letters_by_component (component, id) VALUES (?, ?)`,
		`UPDATE dlq_retry_requests USING TTL ? SET claimed_by = ? WHERE component = ?`: `UPDATE ks.dlq_retry_requests USING TTL ? SET claimed_by = ? WHERE component = ?`,
		`DELETE FROM dead_letters_by_event_type WHERE event_type = ? AND id = ?`:       `DELETE FROM ks.dead_letters_by_event_type WHERE event_type = ? AND id = ?`,
		`SELECT status FROM dlq_retry_results WHERE request_id = ?`:                    `SELECT status FROM ks.dlq_retry_results WHERE request_id = ?`,
		`SELECT DISTINCT component FROM dead_letters_by_component`:                     `SELECT DISTINCT component FROM ks.dead_letters_by_component`,
		`SELECT id FROM dead_letters_by_aggregate WHERE aggregate_id = ?`:              `SELECT id FROM ks.dead_letters_by_aggregate WHERE aggregate_id = ?`,
	} {
		require.Equal(t, want, s.stmt(in))
	}
	// Without a keyspace the session's own is used: nothing changes.
	require.Equal(t, `SELECT component FROM parked_aggregates`, NewStore(nil, "").stmt(`SELECT component FROM parked_aggregates`))
}
