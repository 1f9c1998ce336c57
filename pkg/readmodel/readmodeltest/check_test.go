package readmodeltest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/readmodel"
)

func TestCompare(t *testing.T) {
	id, other := gocql.MustRandomUUID(), gocql.MustRandomUUID()
	at := time.Date(2025, 3, 1, 12, 0, 0, 5_000_000, time.UTC)
	want := map[string]readmodel.OrderRow{
		"a": {OrderID: id, Status: "CREATED", CreatedAt: at, Version: 1},
		"b": {OrderID: other, Status: "CREATED", CreatedAt: at, Version: 1},
		"c": {OrderID: other, Status: "SHIPPED", CreatedAt: at, Version: 3},
	}
	got := map[string]readmodel.OrderRow{
		// The same instant in another zone is the same timestamp.
		"a": {OrderID: id, Status: "CREATED", CreatedAt: at.In(time.FixedZone("X", 3600)), Version: 1},
		"c": {OrderID: other, Status: "CONFIRMED", CreatedAt: at.Add(time.Millisecond), Version: 3},
		"d": {OrderID: id},
	}
	rep := Report{Tables: map[string]TableCounts{}}
	compare(&rep, "order_read_model", want, got)
	require.Equal(t, TableCounts{Expected: 3, Actual: 3, Missing: 1, Extra: 1, Wrong: 1}, rep.Tables["order_read_model"])
	require.Len(t, rep.Mismatches, 3)
	require.Contains(t, rep.Mismatches[0], "order_read_model b: missing")
	require.Equal(t, "order_read_model c: Status: want SHIPPED, got CONFIRMED; CreatedAt: want 2025-03-01T12:00:00.005Z, got 2025-03-01T12:00:00.006Z", rep.Mismatches[1])
	require.Contains(t, rep.Mismatches[2], "order_read_model d: extra row")
	require.False(t, rep.OK())
	require.True(t, Report{}.OK())
}

func TestReportStringIsCapped(t *testing.T) {
	rep := Report{Aggregates: 2, Tables: map[string]TableCounts{"orders_by_status": {Expected: 1, Actual: 31, Extra: 30}}}
	for i := range 30 {
		rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("mismatch %d", i))
	}
	s := rep.String()
	require.True(t, strings.HasPrefix(s, "2 aggregates; orders_by_status: 1 expected, 31 actual, 0 missing, 30 extra, 0 wrong\n"), s)
	require.Contains(t, s, "mismatch 19\n… and 10 more mismatches")
	require.NotContains(t, s, "mismatch 20")
}
