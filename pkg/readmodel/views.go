package readmodel

import (
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/projector"
)

// OrderReadModel is the view of each order as one row of order_read_model.
// A cancelled order keeps its row, marked is_deleted with deleted_at.
func OrderReadModel() projector.View[Order] {
	return orderView("order-read-model", OrderReadModelTable, orderReadModelSchema, writeOrderReadModel)
}

// OrdersByCustomer is the view of each customer's orders, newest first,
// one row per order in orders_by_customer, kept current on every change
// (a cancelled order stays, with status CANCELLED).
func OrdersByCustomer() projector.View[Order] {
	return orderView("orders-by-customer", OrdersByCustomerTable, ordersByCustomerSchema, writeOrdersByCustomer)
}

// OrdersByStatus is the view of orders by status, newest first. The status
// is part of the key, so a status change moves the row: the same batch
// deletes it from the old status partition and inserts it into the new
// one, and an order is always in exactly one partition.
func OrdersByStatus() projector.View[Order] {
	return orderView("orders-by-status", OrdersByStatusTable, ordersByStatusSchema, writeOrdersByStatus)
}

// CustomerReadModel is the view of each customer as one row of
// customer_read_model, addresses included.
func CustomerReadModel() projector.View[Customer] { return customerViewAt(1) }

// customerViewAt is the customer view writing generation gen's table
// (projector.TableName).
func customerViewAt(gen int) projector.View[Customer] {
	table := projector.TableName(CustomerReadModelTable, gen)
	return projector.View[Customer]{
		Name:          "customer-read-model",
		AggregateType: customer.AggregateType,
		Tables:        []string{table},
		Fold:          FoldCustomer,
		Write:         writeCustomerReadModel(table),
		At:            customerViewAt,
		Schema: func(gen int) []string {
			return []string{customerReadModelSchema(projector.TableName(CustomerReadModelTable, gen))}
		},
		Audit: CustomerReadModelAudit(),
	}
}

// writeFunc is a View's Write.
type writeFunc[S any] func(*gocql.Batch, gocql.UUID, S, bool, S, int64) error

// orderView is a view of order events, folded by FoldOrder, that owns one
// table: base in generation 1, projector.TableName(base, gen) in the
// others, created by schema and written by write.
func orderView(name, base string, schema func(table string) string, write func(table string) writeFunc[Order]) projector.View[Order] {
	var at func(gen int) projector.View[Order]
	at = func(gen int) projector.View[Order] {
		table := projector.TableName(base, gen)
		return projector.View[Order]{
			Name:          name,
			AggregateType: order.AggregateType,
			Tables:        []string{table},
			Fold:          FoldOrder,
			Write:         write(table),
			At:            at,
			Schema:        func(gen int) []string { return []string{schema(projector.TableName(base, gen))} },
			Audit:         orderAudit(base),
		}
	}
	return at(1)
}

// The writes are full-row INSERTs (upserts): a row is rewritten as a whole,
// so a replayed or repeated write converges on the same row, and a
// non-frozen collection written by INSERT replaces the previous one. Each
// statement is a function of the table, the generation's name of it.
func insertOrder(table string) string {
	return `INSERT INTO ` + table +
		` (order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at,` +
		` carrier, tracking_number, shipped_at, delivered_at, delivery_signature, cancel_reason, cancelled_by, item_count, totals)` +
		` VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
}

func insertOrderByCustomer(table string) string {
	return `INSERT INTO ` + table +
		` (customer_id, created_at, order_id, status, version, item_count, totals, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
}

func deleteOrderByCustomer(table string) string {
	return `DELETE FROM ` + table + ` WHERE customer_id = ? AND created_at = ? AND order_id = ?`
}

func insertOrderByStatus(table string) string {
	return `INSERT INTO ` + table +
		` (status, created_at, order_id, customer_id, version, item_count, totals, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
}

func deleteOrderByStatus(table string) string {
	return `DELETE FROM ` + table + ` WHERE status = ? AND created_at = ? AND order_id = ?`
}

func insertCustomer(table string) string {
	return `INSERT INTO ` + table +
		` (customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
}

// rowState is a state a view keeps: whether the aggregate exists, and its
// version, the number of events folded into it, which is the sequence of
// the last one.
type rowState interface {
	exists() bool
	version() int64
}

// rowTable is how a view writes the one row an aggregate has in its table.
type rowTable[S rowState, R any] struct {
	// rowOf is the row of aggregate id in state s at version.
	rowOf func(id gocql.UUID, s S, version int64) (R, error)
	// insert adds the full-row INSERT of r to b.
	insert func(b *gocql.Batch, r R)
	// key, for a table keyed by more than the aggregate id, is the primary
	// key of r in the order of del's placeholders; nil otherwise.
	key func(r R) []any
	// del deletes the row of a key.
	del string
	// moves says that the key follows the state (orders_by_status): the
	// first row may be under another key than a later state's.
	moves bool
}

// write adds to b the statements that turn the aggregate's row from that
// of old (written, if existed) into that of s at seq: nothing while the
// aggregate does not exist or when the row is unchanged, else the row, and,
// when its key changed, the deletion of the old row first.
//
// The projector writes the rows before the checkpoint (projector.Checkpoints),
// so the rows may be ahead of the checkpoint, and the next write starts from
// the checkpoint's state: it overwrites or deletes every row that state
// calls for, but not a row written under a new key since. Should that next
// write fold further than the one whose checkpoint was lost (a re-drive
// retried, a repair, a rebuild's scan), to a state under a third key, the
// order would stay listed under a status it left. So a row under a new key
// (a move, or the first row of a table whose key moves) asks for a logged
// batch, which lands with the checkpoint or not at all.
func (t rowTable[S, R]) write(b *gocql.Batch, id gocql.UUID, old S, existed bool, s S, seq int64) error {
	if !s.exists() {
		return nil
	}
	row, err := t.rowOf(id, s, seq)
	if err != nil {
		return err
	}
	prev, ok := t.previous(id, old, existed)
	if ok && reflect.DeepEqual(prev, row) {
		return nil
	}
	if ok && t.key != nil {
		if k := t.key(prev); !sameKey(k, t.key(row)) {
			b.Query(t.del, k...)
			b.Type = gocql.LoggedBatch
		}
	}
	if !ok && t.moves {
		b.Type = gocql.LoggedBatch
	}
	t.insert(b, row)
	return nil
}

// previous returns the row old was written as, if it was.
func (t rowTable[S, R]) previous(id gocql.UUID, old S, existed bool) (R, bool) {
	var zero R
	if !existed || !old.exists() {
		return zero, false
	}
	r, err := t.rowOf(id, old, old.version())
	if err != nil {
		return zero, false
	}
	return r, true
}

// sameKey reports whether two primary keys are equal, comparing times as
// instants.
func sameKey(a, b []any) bool {
	for i := range a {
		if at, ok := a[i].(time.Time); ok {
			if !at.Equal(b[i].(time.Time)) {
				return false
			}
		} else if a[i] != b[i] {
			return false
		}
	}
	return true
}

func writeOrderReadModel(table string) writeFunc[Order] {
	insert := insertOrder(table)
	return rowTable[Order, OrderRow]{
		rowOf: OrderRowOf,
		insert: func(b *gocql.Batch, r OrderRow) {
			b.Query(insert, r.OrderID, r.CustomerID, r.Items, r.Status, r.CreatedAt, r.UpdatedAt,
				r.Version, r.IsDeleted, nullTime(r.DeletedAt),
				nullString(r.Carrier), nullString(r.TrackingNumber), nullTime(r.ShippedAt), nullTime(r.DeliveredAt),
				nullString(r.DeliverySignature), nullString(r.CancelReason), nullString(r.CancelledBy), r.ItemCount, nullTotals(r.Totals))
		},
	}.write
}

// The key of orders_by_customer never changes for a well-formed history;
// should it, the row moves rather than being duplicated.
func writeOrdersByCustomer(table string) writeFunc[Order] {
	insert := insertOrderByCustomer(table)
	return rowTable[Order, CustomerOrderRow]{
		rowOf: customerOrderRowOf,
		insert: func(b *gocql.Batch, r CustomerOrderRow) {
			b.Query(insert, r.CustomerID, r.CreatedAt, r.OrderID, r.Status, r.Version, r.ItemCount, nullTotals(r.Totals), r.UpdatedAt)
		},
		key: func(r CustomerOrderRow) []any { return []any{r.CustomerID, r.CreatedAt, r.OrderID} },
		del: deleteOrderByCustomer(table),
	}.write
}

// Deleting and inserting the same key of orders_by_status in one batch
// would leave the row deleted (both writes carry the batch's timestamp and
// a tombstone wins a tie), so the old row is deleted only when its key
// differs.
func writeOrdersByStatus(table string) writeFunc[Order] {
	insert := insertOrderByStatus(table)
	return rowTable[Order, StatusOrderRow]{
		rowOf: statusOrderRowOf,
		insert: func(b *gocql.Batch, r StatusOrderRow) {
			b.Query(insert, r.Status, r.CreatedAt, r.OrderID, r.CustomerID, r.Version, r.ItemCount, nullTotals(r.Totals), r.UpdatedAt)
		},
		key:   func(r StatusOrderRow) []any { return []any{r.Status, r.CreatedAt, r.OrderID} },
		del:   deleteOrderByStatus(table),
		moves: true,
	}.write
}

func writeCustomerReadModel(table string) writeFunc[Customer] {
	insert := insertCustomer(table)
	return rowTable[Customer, CustomerRow]{
		rowOf: CustomerRowOf,
		insert: func(b *gocql.Batch, r CustomerRow) {
			b.Query(insert, r.CustomerID, r.Name, r.Email, nullString(r.Phone), r.Addresses,
				r.Tier, r.Status, r.Version, r.CreatedAt, r.UpdatedAt)
		},
	}.write
}

// OrderRowOf is the order_read_model row of order id in state s at version:
// what the projector writes, and what a read of a past version answers.
func OrderRowOf(id gocql.UUID, s Order, version int64) (OrderRow, error) {
	customerID, err := customerOf(id, s)
	if err != nil {
		return OrderRow{}, err
	}
	var items []OrderItemRow
	for _, it := range s.State.Items {
		items = append(items, OrderItemRow{
			ProductID:      it.ProductID(),
			Quantity:       int(it.Quantity()),
			UnitPriceMinor: it.UnitPrice().Amount(),
			Currency:       it.Currency().Code(),
		})
	}
	count, totals, err := Summarize(items)
	if err != nil {
		return OrderRow{}, fmt.Errorf("order %s: %w", id, err)
	}
	st := s.State
	cancelled := st.Status == value.OrderStatusCancelled
	row := OrderRow{
		OrderID:           id,
		CustomerID:        customerID,
		Items:             items,
		Status:            st.Status.String(),
		CreatedAt:         Millis(s.CreatedAt),
		UpdatedAt:         Millis(s.UpdatedAt),
		Version:           version,
		IsDeleted:         cancelled,
		Carrier:           st.Carrier,
		TrackingNumber:    st.TrackingNumber,
		ShippedAt:         Millis(s.ShippedAt),
		DeliveredAt:       Millis(s.DeliveredAt),
		DeliverySignature: st.Signature,
		CancelReason:      st.CancelReason,
		CancelledBy:       st.CancelledBy,
		ItemCount:         count,
		Totals:            totals,
	}
	if cancelled {
		row.DeletedAt = Millis(s.DeletedAt)
	}
	return row, nil
}

// Summarize returns the number of units of items (the sum of their
// quantities) and their total per currency code in minor units (nil when
// there are no items). It fails should a total overflow int64, which the
// domain refuses to record.
func Summarize(items []OrderItemRow) (int, map[string]int64, error) {
	var (
		count  int
		totals map[string]int64
	)
	for _, it := range items {
		line, ok := mulExact(int64(it.Quantity), it.UnitPriceMinor)
		sum, ok2 := addExact(totals[it.Currency], line)
		if !ok || !ok2 {
			return 0, nil, fmt.Errorf("the %s total of the items overflows", it.Currency)
		}
		if totals == nil {
			totals = map[string]int64{}
		}
		totals[it.Currency] = sum
		count += it.Quantity
	}
	return count, totals, nil
}

func mulExact(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	p := a * b
	return p, p/b == a && !(a == -1 && b == math.MinInt64) && !(b == -1 && a == math.MinInt64)
}

func addExact(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

// customerOrderRowOf is the orders_by_customer row of order id in state s
// at version.
func customerOrderRowOf(id gocql.UUID, s Order, version int64) (CustomerOrderRow, error) {
	customerID, err := customerOf(id, s)
	if err != nil {
		return CustomerOrderRow{}, err
	}
	count, totals, err := summary(id, s)
	if err != nil {
		return CustomerOrderRow{}, err
	}
	return CustomerOrderRow{
		CustomerID: customerID,
		CreatedAt:  Millis(s.CreatedAt),
		OrderID:    id,
		Status:     s.State.Status.String(),
		Version:    version,
		ItemCount:  count,
		Totals:     totals,
		UpdatedAt:  Millis(s.UpdatedAt),
	}, nil
}

// statusOrderRowOf is the orders_by_status row of order id in state s at
// version.
func statusOrderRowOf(id gocql.UUID, s Order, version int64) (StatusOrderRow, error) {
	customerID, err := customerOf(id, s)
	if err != nil {
		return StatusOrderRow{}, err
	}
	count, totals, err := summary(id, s)
	if err != nil {
		return StatusOrderRow{}, err
	}
	return StatusOrderRow{
		Status:     s.State.Status.String(),
		CreatedAt:  Millis(s.CreatedAt),
		OrderID:    id,
		CustomerID: customerID,
		Version:    version,
		ItemCount:  count,
		Totals:     totals,
		UpdatedAt:  Millis(s.UpdatedAt),
	}, nil
}

// summary is the item count and totals of order id in state s.
func summary(id gocql.UUID, s Order) (int, map[string]int64, error) {
	items := make([]OrderItemRow, 0, len(s.State.Items))
	for _, it := range s.State.Items {
		items = append(items, OrderItemRow{Quantity: int(it.Quantity()), UnitPriceMinor: it.UnitPrice().Amount(), Currency: it.Currency().Code()})
	}
	count, totals, err := Summarize(items)
	if err != nil {
		return 0, nil, fmt.Errorf("order %s: %w", id, err)
	}
	return count, totals, nil
}

// customerOf is the customer of order id in state s, the UUID every order
// row carries.
func customerOf(id gocql.UUID, s Order) (gocql.UUID, error) {
	customerID, err := gocql.ParseUUID(s.State.CustomerID)
	if err != nil {
		return gocql.UUID{}, fmt.Errorf("order %s: customer id %q: %w", id, s.State.CustomerID, err)
	}
	return customerID, nil
}

// CustomerRowOf is the customer_read_model row of customer id in state s
// at version. Its personal columns (name, email, phone, the addresses'
// fields) hold what the events hold: sealed text ("pd:…", the view holds no
// key; query-service opens it) or clear text written before encryption.
// A forgotten customer's state has none left (customer.Apply clears them):
// the row's name, email and phone read personal.Redacted and it has no
// addresses.
func CustomerRowOf(id gocql.UUID, s Customer, version int64) (CustomerRow, error) {
	var addresses map[gocql.UUID]AddressRow
	for _, a := range s.State.Addresses {
		aid, err := gocql.ParseUUID(a.ID)
		if err != nil {
			return CustomerRow{}, fmt.Errorf("customer %s: address id %q: %w", id, a.ID, err)
		}
		if addresses == nil {
			addresses = make(map[gocql.UUID]AddressRow, len(s.State.Addresses))
		}
		f := a.Address.Fields()
		addresses[aid] = AddressRow{
			Label: f.Label, Line1: f.Line1, Line2: f.Line2, City: f.City,
			Region: f.Region, PostalCode: f.PostalCode, Country: f.Country,
		}
	}
	name, email, phone := s.State.Name, s.State.Email.String(), s.State.Phone.String()
	if s.State.Forgotten {
		name, email, phone = personal.Redacted, personal.Redacted, personal.Redacted
	}
	return CustomerRow{
		CustomerID: id,
		Name:       name,
		Email:      email,
		Phone:      phone,
		Addresses:  addresses,
		Tier:       s.State.Tier.String(),
		Status:     s.State.Status.String(),
		Version:    version,
		CreatedAt:  Millis(s.CreatedAt),
		UpdatedAt:  Millis(s.UpdatedAt),
	}, nil
}

// nullTime binds the zero time as null: gocql would bind it as an empty
// value, which is not null.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// nullTotals binds no totals as null, the value a row without items
// reads back as.
func nullTotals(m map[string]int64) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
