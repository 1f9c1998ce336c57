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
	selectOrdersWithStatus := Generation(1).selectOrdersWithStatus()
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

// Each generation reads its own tables: generation 1 the tables of
// schema/v0001_initial, the others the tables a rebuild created.
func TestGenerationNamesItsTables(t *testing.T) {
	require.Equal(t, `SELECT `+StatusOrderColumns+` FROM orders_by_status WHERE status = ?`, Generation(1).selectOrdersWithStatus())
	require.Equal(t, `SELECT `+StatusOrderColumns+` FROM orders_by_status_g3 WHERE status = ?`, Generation(3).selectOrdersWithStatus())
	require.Equal(t, `SELECT `+OrderColumns+` FROM order_read_model_g2 WHERE order_id = ?`, Generation(2).selectOrder())
	require.Contains(t, Generation(2).selectCustomer(), ` FROM customer_read_model_g2 WHERE`)
	require.Contains(t, Generation(2).selectOrdersOfCustomer(), ` FROM orders_by_customer_g2 WHERE`)
}
