package readmodel

import (
	"fmt"
	"reflect"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/projector"
)

// OrderReadModel is the view of each order as one row of order_read_model.
// A cancelled order keeps its row, marked is_deleted with deleted_at.
func OrderReadModel() projector.View[Order] {
	return projector.View[Order]{
		Name:          "order-read-model",
		AggregateType: order.AggregateType,
		Tables:        []string{OrderReadModelTable},
		Fold:          FoldOrder,
		Write:         writeOrderReadModel,
	}
}

// OrdersByCustomer is the view of each customer's orders, newest first,
// one row per order in orders_by_customer, kept current on every change
// (a cancelled order stays, with status CANCELLED).
func OrdersByCustomer() projector.View[Order] {
	return projector.View[Order]{
		Name:          "orders-by-customer",
		AggregateType: order.AggregateType,
		Tables:        []string{OrdersByCustomerTable},
		Fold:          FoldOrder,
		Write:         writeOrdersByCustomer,
	}
}

// OrdersByStatus is the view of orders by status, newest first. The status
// is part of the key, so a status change moves the row: the same batch
// deletes it from the old status partition and inserts it into the new
// one, and an order is always in exactly one partition.
func OrdersByStatus() projector.View[Order] {
	return projector.View[Order]{
		Name:          "orders-by-status",
		AggregateType: order.AggregateType,
		Tables:        []string{OrdersByStatusTable},
		Fold:          FoldOrder,
		Write:         writeOrdersByStatus,
	}
}

// CustomerReadModel is the view of each customer as one row of
// customer_read_model, addresses included.
func CustomerReadModel() projector.View[Customer] {
	return projector.View[Customer]{
		Name:          "customer-read-model",
		AggregateType: customer.AggregateType,
		Tables:        []string{CustomerReadModelTable},
		Fold:          FoldCustomer,
		Write:         writeCustomerReadModel,
	}
}

// The writes are full-row INSERTs (upserts): a row is rewritten as a whole,
// so a replayed or repeated write converges on the same row, and a
// non-frozen collection written by INSERT replaces the previous one.
const (
	insertOrder = `INSERT INTO ` + OrderReadModelTable +
		` (order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertOrderByCustomer = `INSERT INTO ` + OrdersByCustomerTable +
		` (customer_id, created_at, order_id, status, version) VALUES (?, ?, ?, ?, ?)`
	deleteOrderByCustomer = `DELETE FROM ` + OrdersByCustomerTable +
		` WHERE customer_id = ? AND created_at = ? AND order_id = ?`
	insertOrderByStatus = `INSERT INTO ` + OrdersByStatusTable +
		` (status, created_at, order_id, customer_id, version) VALUES (?, ?, ?, ?, ?)`
	deleteOrderByStatus = `DELETE FROM ` + OrdersByStatusTable +
		` WHERE status = ? AND created_at = ? AND order_id = ?`
	insertCustomer = `INSERT INTO ` + CustomerReadModelTable +
		` (customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// previous returns the row old was written as, if it was. A state's
// version is the number of events folded into it, which is the sequence of
// the last one.
func previous[S interface {
	exists() bool
	version() int64
}, R any](old S, existed bool, row func(S, int64) (R, error)) (R, bool) {
	var zero R
	if !existed || !old.exists() {
		return zero, false
	}
	r, err := row(old, old.version())
	if err != nil {
		return zero, false
	}
	return r, true
}

func writeOrderReadModel(b *gocql.Batch, id gocql.UUID, old Order, existed bool, s Order, seq int64) error {
	if !s.State.Exists() {
		return nil
	}
	build := func(s Order, v int64) (OrderRow, error) { return OrderRowOf(id, s, v) }
	row, err := build(s, seq)
	if err != nil {
		return err
	}
	if prev, ok := previous(old, existed, build); ok && reflect.DeepEqual(prev, row) {
		return nil
	}
	b.Query(insertOrder, row.OrderID, row.CustomerID, row.Items, row.Status, row.CreatedAt, row.UpdatedAt,
		row.Version, row.IsDeleted, nullTime(row.DeletedAt))
	return nil
}

func writeOrdersByCustomer(b *gocql.Batch, id gocql.UUID, old Order, existed bool, s Order, seq int64) error {
	if !s.State.Exists() {
		return nil
	}
	build := func(s Order, v int64) (CustomerOrderRow, error) { return customerOrderRowOf(id, s, v) }
	row, err := build(s, seq)
	if err != nil {
		return err
	}
	prev, ok := previous(old, existed, build)
	if ok && prev == row {
		return nil
	}
	// The key never changes for a well-formed history; should it, the row
	// moves rather than being duplicated.
	if ok && (prev.CustomerID != row.CustomerID || !prev.CreatedAt.Equal(row.CreatedAt) || prev.OrderID != row.OrderID) {
		b.Query(deleteOrderByCustomer, prev.CustomerID, prev.CreatedAt, prev.OrderID)
	}
	b.Query(insertOrderByCustomer, row.CustomerID, row.CreatedAt, row.OrderID, row.Status, row.Version)
	return nil
}

func writeOrdersByStatus(b *gocql.Batch, id gocql.UUID, old Order, existed bool, s Order, seq int64) error {
	if !s.State.Exists() {
		return nil
	}
	build := func(s Order, v int64) (StatusOrderRow, error) { return statusOrderRowOf(id, s, v) }
	row, err := build(s, seq)
	if err != nil {
		return err
	}
	prev, ok := previous(old, existed, build)
	if ok && prev == row {
		return nil
	}
	// Deleting and inserting the same key in one batch would leave the
	// row deleted (both writes carry the batch's timestamp and a tombstone
	// wins a tie), so the old row is deleted only when its key differs.
	if ok && (prev.Status != row.Status || !prev.CreatedAt.Equal(row.CreatedAt) || prev.OrderID != row.OrderID) {
		b.Query(deleteOrderByStatus, prev.Status, prev.CreatedAt, prev.OrderID)
	}
	b.Query(insertOrderByStatus, row.Status, row.CreatedAt, row.OrderID, row.CustomerID, row.Version)
	return nil
}

func writeCustomerReadModel(b *gocql.Batch, id gocql.UUID, old Customer, existed bool, s Customer, seq int64) error {
	if !s.State.Exists() {
		return nil
	}
	build := func(s Customer, v int64) (CustomerRow, error) { return CustomerRowOf(id, s, v) }
	row, err := build(s, seq)
	if err != nil {
		return err
	}
	if prev, ok := previous(old, existed, build); ok && reflect.DeepEqual(prev, row) {
		return nil
	}
	b.Query(insertCustomer, row.CustomerID, row.Name, row.Email, nullString(row.Phone), row.Addresses,
		row.Tier, row.Status, row.Version, row.CreatedAt, row.UpdatedAt)
	return nil
}

// OrderRowOf is the order_read_model row of order id in state s at version:
// what the projector writes, and what a read of a past version answers.
func OrderRowOf(id gocql.UUID, s Order, version int64) (OrderRow, error) {
	customerID, err := gocql.ParseUUID(s.State.CustomerID)
	if err != nil {
		return OrderRow{}, fmt.Errorf("order %s: customer id %q: %w", id, s.State.CustomerID, err)
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
	cancelled := s.State.Status == value.OrderStatusCancelled
	row := OrderRow{
		OrderID:    id,
		CustomerID: customerID,
		Items:      items,
		Status:     s.State.Status.String(),
		CreatedAt:  Millis(s.CreatedAt),
		UpdatedAt:  Millis(s.UpdatedAt),
		Version:    version,
		IsDeleted:  cancelled,
	}
	if cancelled {
		row.DeletedAt = Millis(s.DeletedAt)
	}
	return row, nil
}

// customerOrderRowOf is the orders_by_customer row of order id in state s
// at version.
func customerOrderRowOf(id gocql.UUID, s Order, version int64) (CustomerOrderRow, error) {
	customerID, err := gocql.ParseUUID(s.State.CustomerID)
	if err != nil {
		return CustomerOrderRow{}, fmt.Errorf("order %s: customer id %q: %w", id, s.State.CustomerID, err)
	}
	return CustomerOrderRow{
		CustomerID: customerID,
		CreatedAt:  Millis(s.CreatedAt),
		OrderID:    id,
		Status:     s.State.Status.String(),
		Version:    version,
	}, nil
}

// statusOrderRowOf is the orders_by_status row of order id in state s at
// version.
func statusOrderRowOf(id gocql.UUID, s Order, version int64) (StatusOrderRow, error) {
	customerID, err := gocql.ParseUUID(s.State.CustomerID)
	if err != nil {
		return StatusOrderRow{}, fmt.Errorf("order %s: customer id %q: %w", id, s.State.CustomerID, err)
	}
	return StatusOrderRow{
		Status:     s.State.Status.String(),
		CreatedAt:  Millis(s.CreatedAt),
		OrderID:    id,
		CustomerID: customerID,
		Version:    version,
	}, nil
}

// CustomerRowOf is the customer_read_model row of customer id in state s
// at version.
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
	return CustomerRow{
		CustomerID: id,
		Name:       s.State.Name,
		Email:      s.State.Email.String(),
		Phone:      s.State.Phone.String(),
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

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
