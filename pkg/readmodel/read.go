package readmodel

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

// The readers use the session's consistency; the caller's context bounds
// them.
const (
	selectOrder = `SELECT order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at FROM ` +
		OrderReadModelTable + ` WHERE order_id = ?`
	selectOrdersOfCustomer = `SELECT customer_id, created_at, order_id, status, version FROM ` +
		OrdersByCustomerTable + ` WHERE customer_id = ?`
	selectOrdersWithStatus = `SELECT status, created_at, order_id, customer_id, version FROM ` +
		OrdersByStatusTable + ` WHERE status = ?`
	selectCustomer = `SELECT customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at FROM ` +
		CustomerReadModelTable + ` WHERE customer_id = ?`
)

// ReadOrder returns the order_read_model row of the order, or false when
// there is none.
func ReadOrder(ctx context.Context, session *gocql.Session, id gocql.UUID) (OrderRow, bool, error) {
	var r OrderRow
	err := session.Query(selectOrder, id).WithContext(ctx).Idempotent(true).Scan(orderRowDest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return OrderRow{}, false, nil
	}
	if err != nil {
		return OrderRow{}, false, fmt.Errorf("reading order %s: %w", id, err)
	}
	normalizeOrder(&r)
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
	rows, err := scanAll(iter, customerOrderRowDest)
	if err != nil {
		return nil, fmt.Errorf("reading orders of customer %s: %w", customerID, err)
	}
	return rows, nil
}

// OrdersOfCustomerPage returns at most size orders of the customer, newest
// first, starting where the page token (nil: at the start) says, and the
// token of the next page (nil after the last).
func OrdersOfCustomerPage(ctx context.Context, session *gocql.Session, customerID gocql.UUID, size int, token []byte) ([]CustomerOrderRow, []byte, error) {
	q := session.Query(selectOrdersOfCustomer, customerID).WithContext(ctx).Idempotent(true)
	rows, next, err := scanPage(q, size, token, customerOrderRowDest)
	if err != nil {
		return nil, nil, fmt.Errorf("reading orders of customer %s: %w", customerID, err)
	}
	return rows, next, nil
}

// OrdersWithStatus returns every order with the status, newest first.
func OrdersWithStatus(ctx context.Context, session *gocql.Session, status value.OrderStatus) ([]StatusOrderRow, error) {
	iter := session.Query(selectOrdersWithStatus, status.String()).WithContext(ctx).Idempotent(true).Iter()
	rows, err := scanAll(iter, statusOrderRowDest)
	if err != nil {
		return nil, fmt.Errorf("reading %s orders: %w", status, err)
	}
	return rows, nil
}

// OrdersWithStatusPage returns at most size orders with the status, newest
// first, starting where the page token (nil: at the start) says, and the
// token of the next page (nil after the last).
func OrdersWithStatusPage(ctx context.Context, session *gocql.Session, status value.OrderStatus, size int, token []byte) ([]StatusOrderRow, []byte, error) {
	q := session.Query(selectOrdersWithStatus, status.String()).WithContext(ctx).Idempotent(true)
	rows, next, err := scanPage(q, size, token, statusOrderRowDest)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s orders: %w", status, err)
	}
	return rows, next, nil
}

// orderRowDest returns the scan destinations of r in the column order of
// selectOrder.
func orderRowDest(r *OrderRow) []any {
	return []any{&r.OrderID, &r.CustomerID, &r.Items, &r.Status, &r.CreatedAt, &r.UpdatedAt, &r.Version, &r.IsDeleted, &r.DeletedAt}
}

// customerOrderRowDest returns the scan destinations of r in the column
// order of selectOrdersOfCustomer.
func customerOrderRowDest(r *CustomerOrderRow) []any {
	return []any{&r.CustomerID, &r.CreatedAt, &r.OrderID, &r.Status, &r.Version}
}

// statusOrderRowDest returns the scan destinations of r in the column
// order of selectOrdersWithStatus.
func statusOrderRowDest(r *StatusOrderRow) []any {
	return []any{&r.Status, &r.CreatedAt, &r.OrderID, &r.CustomerID, &r.Version}
}

// customerRowDest returns the scan destinations of r in the column order
// of selectCustomer.
func customerRowDest(r *CustomerRow) []any {
	return []any{&r.CustomerID, &r.Name, &r.Email, &r.Phone, &r.Addresses, &r.Tier, &r.Status, &r.Version, &r.CreatedAt, &r.UpdatedAt}
}

// normalizeOrder gives a scanned row the one spelling of "no items" the
// views produce: nil, never empty.
func normalizeOrder(r *OrderRow) {
	if len(r.Items) == 0 {
		r.Items = nil
	}
}

// normalizeCustomer gives a scanned row the one spelling of "no
// addresses" the views produce: nil, never empty.
func normalizeCustomer(r *CustomerRow) {
	if len(r.Addresses) == 0 {
		r.Addresses = nil
	}
}

func scanAll[R any](iter *gocql.Iter, dest func(*R) []any) ([]R, error) {
	var (
		rows []R
		r    R
	)
	for iter.Scan(dest(&r)...) {
		rows = append(rows, r)
		r = *new(R)
	}
	if err := iter.Close(); err != nil {
		return nil, err
	}
	return rows, nil
}

func scanPage[R any](q *gocql.Query, size int, token []byte, dest func(*R) []any) ([]R, []byte, error) {
	if size <= 0 {
		return nil, nil, fmt.Errorf("page size %d, must be positive", size)
	}
	// An explicit page state turns gocql's automatic paging off, so the
	// iterator holds one page.
	iter := q.PageSize(size).PageState(token).Iter()
	next := iter.PageState()
	rows, err := scanAll(iter, dest)
	if err != nil {
		return nil, nil, err
	}
	if len(next) == 0 {
		next = nil
	}
	return rows, next, nil
}
