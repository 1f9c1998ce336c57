package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

// The readers use the session's consistency; the caller's context bounds
// them.
const (
	selectOrder            = `SELECT ` + OrderColumns + ` FROM ` + OrderReadModelTable + ` WHERE order_id = ?`
	selectOrdersOfCustomer = `SELECT ` + CustomerOrderColumns + ` FROM ` + OrdersByCustomerTable + ` WHERE customer_id = ?`
	selectOrdersWithStatus = `SELECT ` + StatusOrderColumns + ` FROM ` + OrdersByStatusTable + ` WHERE status = ?`
	selectCustomer         = `SELECT customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at FROM ` +
		CustomerReadModelTable + ` WHERE customer_id = ?`
)

// The columns of each order table, in the order of the scan destinations
// OrderRowDest, CustomerOrderRowDest and StatusOrderRowDest.
const (
	OrderColumns = `order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at, ` +
		`carrier, tracking_number, shipped_at, delivered_at, delivery_signature, cancel_reason, cancelled_by, item_count, totals`
	CustomerOrderColumns = `customer_id, created_at, order_id, status, version, item_count, totals, updated_at`
	StatusOrderColumns   = `status, created_at, order_id, customer_id, version, item_count, totals, updated_at`
)

// ReadOrder returns the order_read_model row of the order, or false when
// there is none.
func ReadOrder(ctx context.Context, session *gocql.Session, id gocql.UUID) (OrderRow, bool, error) {
	var r OrderRow
	err := session.Query(selectOrder, id).WithContext(ctx).Idempotent(true).Scan(OrderRowDest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return OrderRow{}, false, nil
	}
	if err != nil {
		return OrderRow{}, false, fmt.Errorf("reading order %s: %w", id, err)
	}
	NormalizeOrder(&r)
	return r, true, nil
}

// ReadCustomer returns the customer_read_model row of the customer, or
// false when there is none.
func ReadCustomer(ctx context.Context, session *gocql.Session, id gocql.UUID) (CustomerRow, bool, error) {
	var r CustomerRow
	err := session.Query(selectCustomer, id).WithContext(ctx).Idempotent(true).Scan(customerRowDest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return CustomerRow{}, false, nil
	}
	if err != nil {
		return CustomerRow{}, false, fmt.Errorf("reading customer %s: %w", id, err)
	}
	normalizeCustomer(&r)
	return r, true, nil
}

// OrdersOfCustomer returns every order of the customer, newest first.
func OrdersOfCustomer(ctx context.Context, session *gocql.Session, customerID gocql.UUID) ([]CustomerOrderRow, error) {
	iter := session.Query(selectOrdersOfCustomer, customerID).WithContext(ctx).Idempotent(true).Iter()
	rows, err := scanAll(iter, CustomerOrderRowDest, NormalizeCustomerOrder)
	if err != nil {
		return nil, fmt.Errorf("reading orders of customer %s: %w", customerID, err)
	}
	return rows, nil
}

// Created bounds a listing of orders by their creation time, both bounds
// exclusive; a zero bound is no bound.
type Created struct {
	After, Before time.Time
}

// restrict adds the bounds of c to a statement over a partition clustered
// by created_at.
func (c Created) restrict(stmt string, args ...any) (string, []any) {
	if !c.After.IsZero() {
		stmt += ` AND created_at > ?`
		args = append(args, c.After)
	}
	if !c.Before.IsZero() {
		stmt += ` AND created_at < ?`
		args = append(args, c.Before)
	}
	return stmt, args
}

// OrdersOfCustomerPage returns at most size orders of the customer created
// within c, newest first, starting where the page token (nil: at the
// start) says, and the token of the next page (nil after the last).
func OrdersOfCustomerPage(ctx context.Context, session *gocql.Session, customerID gocql.UUID, c Created, size int, token []byte) ([]CustomerOrderRow, []byte, error) {
	stmt, args := c.restrict(selectOrdersOfCustomer, customerID)
	q := session.Query(stmt, args...).WithContext(ctx).Idempotent(true)
	rows, next, err := scanPage(q, size, token, CustomerOrderRowDest, NormalizeCustomerOrder)
	if err != nil {
		return nil, nil, fmt.Errorf("reading orders of customer %s: %w", customerID, err)
	}
	return rows, next, nil
}

// OrdersWithStatus returns every order with the status, newest first.
func OrdersWithStatus(ctx context.Context, session *gocql.Session, status value.OrderStatus) ([]StatusOrderRow, error) {
	iter := session.Query(selectOrdersWithStatus, status.String()).WithContext(ctx).Idempotent(true).Iter()
	rows, err := scanAll(iter, StatusOrderRowDest, NormalizeStatusOrder)
	if err != nil {
		return nil, fmt.Errorf("reading %s orders: %w", status, err)
	}
	return rows, nil
}

// OrdersWithStatusPage returns at most size orders with the status created
// within c, newest first, starting where the page token (nil: at the
// start) says, and the token of the next page (nil after the last).
func OrdersWithStatusPage(ctx context.Context, session *gocql.Session, status value.OrderStatus, c Created, size int, token []byte) ([]StatusOrderRow, []byte, error) {
	stmt, args := c.restrict(selectOrdersWithStatus, status.String())
	q := session.Query(stmt, args...).WithContext(ctx).Idempotent(true)
	rows, next, err := scanPage(q, size, token, StatusOrderRowDest, NormalizeStatusOrder)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s orders: %w", status, err)
	}
	return rows, next, nil
}

// OrderRowDest returns the scan destinations of r in the order of
// OrderColumns.
func OrderRowDest(r *OrderRow) []any {
	return []any{&r.OrderID, &r.CustomerID, &r.Items, &r.Status, &r.CreatedAt, &r.UpdatedAt, &r.Version, &r.IsDeleted, &r.DeletedAt,
		&r.Carrier, &r.TrackingNumber, &r.ShippedAt, &r.DeliveredAt, &r.DeliverySignature, &r.CancelReason, &r.CancelledBy, &r.ItemCount, &r.Totals}
}

// CustomerOrderRowDest returns the scan destinations of r in the order of
// CustomerOrderColumns.
func CustomerOrderRowDest(r *CustomerOrderRow) []any {
	return []any{&r.CustomerID, &r.CreatedAt, &r.OrderID, &r.Status, &r.Version, &r.ItemCount, &r.Totals, &r.UpdatedAt}
}

// StatusOrderRowDest returns the scan destinations of r in the order of
// StatusOrderColumns.
func StatusOrderRowDest(r *StatusOrderRow) []any {
	return []any{&r.Status, &r.CreatedAt, &r.OrderID, &r.CustomerID, &r.Version, &r.ItemCount, &r.Totals, &r.UpdatedAt}
}

// customerRowDest returns the scan destinations of r in the column order
// of selectCustomer.
func customerRowDest(r *CustomerRow) []any {
	return []any{&r.CustomerID, &r.Name, &r.Email, &r.Phone, &r.Addresses, &r.Tier, &r.Status, &r.Version, &r.CreatedAt, &r.UpdatedAt}
}

// NormalizeOrder gives a scanned row the one spelling of "no items" and
// "no totals" the views produce: nil, never empty.
func NormalizeOrder(r *OrderRow) {
	if len(r.Items) == 0 {
		r.Items = nil
	}
	if len(r.Totals) == 0 {
		r.Totals = nil
	}
}

// NormalizeCustomerOrder gives a scanned row the one spelling of "no
// totals": nil.
func NormalizeCustomerOrder(r *CustomerOrderRow) {
	if len(r.Totals) == 0 {
		r.Totals = nil
	}
}

// NormalizeStatusOrder gives a scanned row the one spelling of "no
// totals": nil.
func NormalizeStatusOrder(r *StatusOrderRow) {
	if len(r.Totals) == 0 {
		r.Totals = nil
	}
}

// normalizeCustomer gives a scanned row the one spelling of "no
// addresses" the views produce: nil, never empty.
func normalizeCustomer(r *CustomerRow) {
	if len(r.Addresses) == 0 {
		r.Addresses = nil
	}
}

// scanAll reads every row of iter into dest, normalized by norm.
func scanAll[R any](iter *gocql.Iter, dest func(*R) []any, norm func(*R)) ([]R, error) {
	var (
		rows []R
		r    R
	)
	for iter.Scan(dest(&r)...) {
		norm(&r)
		rows = append(rows, r)
		r = *new(R)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	return rows, nil
}

func scanPage[R any](q *gocql.Query, size int, token []byte, dest func(*R) []any, norm func(*R)) ([]R, []byte, error) {
	if size <= 0 {
		return nil, nil, fmt.Errorf("page size %d, must be positive", size)
	}
	// An explicit page state turns gocql's automatic paging off, so the
	// iterator holds one page.
	iter := q.PageSize(size).PageState(token).Iter()
	next := iter.PageState()
	rows, err := scanAll(iter, dest, norm)
	if err != nil {
		return nil, nil, err
	}
	if len(next) == 0 {
		next = nil
	}
	return rows, next, nil
}
