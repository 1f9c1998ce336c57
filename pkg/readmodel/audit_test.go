package readmodel_test

import (
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// Every view tells the auditor which rows a state calls for — the rows its
// Write writes, keyed as the table keys them — and its reader deletes by
// that key in the live generation's table.
func TestAuditWantsTheRowsWriteWrites(t *testing.T) {
	events := orderEvents(t, orderID, created(t), order.OrderConfirmed{})
	for _, tt := range []struct {
		view    projector.View[readmodel.Order]
		key     string
		deleted string
		args    []any
	}{
		{view: readmodel.OrderReadModel(), key: "(" + orderID.String() + ")",
			deleted: `DELETE FROM order_read_model_g2 WHERE order_id = ?`, args: []any{orderID}},
		{view: readmodel.OrdersByCustomer(), key: "(" + customerID.String() + ", 2025-03-01T12:00:01.123Z, " + orderID.String() + ")",
			deleted: `DELETE FROM orders_by_customer_g2 WHERE customer_id = ? AND created_at = ? AND order_id = ?`, args: []any{customerID, at(1), orderID}},
		{view: readmodel.OrdersByStatus(), key: "(CONFIRMED, 2025-03-01T12:00:01.123Z, " + orderID.String() + ")",
			deleted: `DELETE FROM orders_by_status_g2 WHERE status = ? AND created_at = ? AND order_id = ?`, args: []any{"CONFIRMED", at(1), orderID}},
	} {
		t.Run(tt.view.Name, func(t *testing.T) {
			require.NotNil(t, tt.view.Audit)
			none, err := tt.view.Audit.Want(orderID, readmodel.Order{}, 0)
			require.NoError(t, err)
			require.Empty(t, none, "no rows before the order exists")

			s := fold(t, tt.view, readmodel.Order{}, events...)
			want, err := tt.view.Audit.Want(orderID, s, 2)
			require.NoError(t, err)
			require.Len(t, want, 1)
			w := want[0]
			require.Equal(t, tt.view.Tables[0], w.Table)
			require.Equal(t, tt.key, w.Key)
			require.Equal(t, orderID, w.AggregateID)
			require.Equal(t, int64(2), w.Version)
			require.Equal(t, readmodel.Digest(w.Value), w.Digest)

			// What Write inserts is the wanted row, column for column.
			b := new(gocql.Batch)
			require.NoError(t, tt.view.Write(b, orderID, readmodel.Order{}, false, s, 2))
			require.Len(t, b.Entries, 1)
			require.Contains(t, b.Entries[0].Args, w.Version)

			rows := tt.view.Audit.Rows(nil, func(base string) string { return projector.TableName(base, 2) })
			del := new(gocql.Batch)
			rows.Delete(del, w)
			require.Equal(t, []gocql.BatchEntry{entry(tt.deleted, tt.args...)}, del.Entries)
		})
	}

	v := readmodel.CustomerReadModel()
	require.NotNil(t, v.Audit)
	s := fold(t, v, readmodel.Customer{}, customerEvents(t, customerID, registered(t))...)
	want, err := v.Audit.Want(customerID, s, 1)
	require.NoError(t, err)
	require.Len(t, want, 1)
	require.Equal(t, "("+customerID.String()+")", want[0].Key)
	del := new(gocql.Batch)
	v.Audit.Rows(nil, func(base string) string { return base }).Delete(del, want[0])
	require.Equal(t, []gocql.BatchEntry{entry(`DELETE FROM customer_read_model WHERE customer_id = ?`, customerID)}, del.Entries)
}

// A status change moves the wanted orders_by_status row to the new
// status's key: the row under the old one is what the auditor finds stray.
func TestAuditWantsTheCurrentStatusOnly(t *testing.T) {
	v := readmodel.OrdersByStatus()
	s := fold(t, v, readmodel.Order{}, orderEvents(t, orderID, created(t), order.OrderConfirmed{},
		order.OrderCancelled{Reason: "r", CancelledBy: "c", PreviousStatus: value.OrderStatusConfirmed})...)
	want, err := v.Audit.Want(orderID, s, 3)
	require.NoError(t, err)
	require.Len(t, want, 1)
	require.Equal(t, "(CANCELLED, 2025-03-01T12:00:01.123Z, "+orderID.String()+")", want[0].Key)
}

// Keys print times as instants at millisecond precision, so that a key
// computed and the same key read back print the same; digests do not
// depend on how an empty collection is spelled once normalized.
func TestKeyStringAndDigest(t *testing.T) {
	id := gocql.MustRandomUUID()
	local := time.Date(2025, 3, 1, 13, 0, 1, 123_000_000, time.FixedZone("CET", 3600))
	require.Equal(t, readmodel.KeyString("CREATED", at(1), id), readmodel.KeyString("CREATED", local, id), "the same instant")
	require.Equal(t, "(null)", readmodel.KeyString(time.Time{}))

	computed := readmodel.StatusOrderRow{Status: "CREATED", CreatedAt: at(1), OrderID: id, Version: 1}
	read := computed
	read.Totals = map[string]int64{}
	readmodel.NormalizeStatusOrder(&read)
	require.Equal(t, readmodel.Digest(computed), readmodel.Digest(read))
	read.Version = 2
	require.NotEqual(t, readmodel.Digest(computed), readmodel.Digest(read))
}
