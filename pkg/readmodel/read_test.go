package readmodel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The creation-time bounds of a listing, as the statement and its
// arguments carry them.
func TestCreatedRestricts(t *testing.T) {
	after := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	before := after.Add(time.Hour)
	for _, tc := range []struct {
		name string
		c    Created
		stmt string
		args []any
	}{
		{"none", Created{}, selectOrdersWithStatus, []any{"CREATED"}},
		{"after", Created{After: after}, selectOrdersWithStatus + ` AND created_at > ?`, []any{"CREATED", after}},
		{"before", Created{Before: before}, selectOrdersWithStatus + ` AND created_at < ?`, []any{"CREATED", before}},
		{"both", Created{After: after, Before: before}, selectOrdersWithStatus + ` AND created_at > ? AND created_at < ?`, []any{"CREATED", after, before}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stmt, args := tc.c.restrict(selectOrdersWithStatus, "CREATED")
			require.Equal(t, tc.stmt, stmt)
			require.Equal(t, tc.args, args)
		})
	}
}
