package projector_test

import (
	"errors"
	"testing"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/projector"
)

// A crash between the rows and the checkpoint (the rows written, the
// checkpoint not): Handle fails, the projector does not take the record
// for applied (nothing cached), and the record consumed again writes the
// same rows again, then the checkpoint, counted once.
func TestHandleAfterACrashBetweenRowsAndCheckpoint(t *testing.T) {
	u := newUnit(t)
	id := u.commit(t, "A", "B", "C")
	require.NoError(t, u.handle(t, id, 1))
	crash := errors.New("crashed after the rows")
	u.cps.FailAfterRows(crash)
	require.ErrorIs(t, u.handle(t, id, 2), crash)
	seq, seqs := u.applied(t, id)
	require.Equal(t, int64(1), seq, "the checkpoint stays behind")
	require.Equal(t, []int64{1}, seqs)

	require.NoError(t, u.handle(t, id, 2), "the record again")
	require.NoError(t, u.handle(t, id, 3))
	seq, seqs = u.applied(t, id)
	require.Equal(t, int64(3), seq)
	require.Equal(t, []int64{1, 2, 3}, seqs)

	row := func(n int, seq int64) projector.RowsWrite {
		return projector.RowsWrite{Entries: []gocql.BatchEntry{{Stmt: `UPDATE tally SET n = ?, version = ? WHERE id = ?`, Args: []any{n, seq, id}}}}
	}
	require.Equal(t, []projector.RowsWrite{row(1, 1), row(2, 2), row(2, 2), row(3, 3)}, u.cps.Written(viewName, id),
		"the rows of 2 written again, the same")
	require.Equal(t, 3.0, testutil.ToFloat64(u.p.Metrics().Applied), "each event counted once")
}
