package eventstoretest

import (
	"context"
	"fmt"

	"github.com/gocql/gocql"
)

// ReplaceEventData overwrites the payload of one stored event in the CQL
// event store behind session, as an operator's hand edit would: for tests
// of what readers do with an event they cannot decode, and of the fix.
// (memstore.Store.ReplaceEventData does the same in memory.) Events are
// immutable everywhere else.
func ReplaceEventData(ctx context.Context, session *gocql.Session, id gocql.UUID, seq int64, data []byte) error {
	if err := session.Query(`UPDATE event_store SET event_data = ? WHERE aggregate_id = ? AND sequence_number = ?`, string(data), id, seq).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("replacing event %d of %s: %w", seq, id, err)
	}
	return nil
}
