package readmodel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/projector"
)

// Generation is one generation of the read models' tables (a rebuild
// writes a new one beside the live one; projector.TableName): its methods
// read that generation's tables. Each view has its own active generation
// (projector.ReadGenerations); query-service reads each view's. The
// package-level readers read generation 1, the tables of
// schema/v0001_initial (tests and tools of a keyspace never rebuilt).
type Generation int

// Table is the generation's name of the read-model table base.
func (g Generation) Table(base string) string { return projector.TableName(base, int(g)) }

// The readers use the session's consistency; the caller's context bounds
// them.
func (g Generation) selectOrder() string {
	return `SELECT ` + OrderColumns + ` FROM ` + g.Table(OrderReadModelTable) + ` WHERE order_id = ?`
}

func (g Generation) selectOrdersOfCustomer() string {
	return `SELECT ` + CustomerOrderColumns + ` FROM ` + g.Table(OrdersByCustomerTable) + ` WHERE customer_id = ?`
}

func (g Generation) selectOrdersWithStatus() string {
	return `SELECT ` + StatusOrderColumns + ` FROM ` + g.Table(OrdersByStatusTable) + ` WHERE status = ?`
}

func (g Generation) selectCustomer() string {
	return `SELECT customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at FROM ` +
		g.Table(CustomerReadModelTable) + ` WHERE customer_id = ?`
}

// The columns of each order table, in the order of the scan destinations
// OrderRowDest, CustomerOrderRowDest and StatusOrderRowDest.
const (
	OrderColumns = `order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at, ` +
		`carrier, tracking_number, shipped_at, delivered_at, delivery_signature, cancel_reason, cancelled_by, item_count, totals`
	CustomerOrderColumns = `customer_id, created_at, order_id, status, version, item_count, totals, updated_at`
	StatusOrderColumns   = `status, created_at, order_id, customer_id, version, item_count, totals, updated_at`
)

// ReadOrder returns the order_read_model row of the order (generation 1),
// or false when there is none.
func ReadOrder(ctx context.Context, session *gocql.Session, id gocql.UUID) (OrderRow, bool, error) {
	return Generation(1).ReadOrder(ctx, session, id)
}

// ReadOrder returns the order_read_model row of the order, or false when
// there is none.
func (g Generation) ReadOrder(ctx context.Context, session *gocql.Session, id gocql.UUID) (OrderRow, bool, error) {
	var r OrderRow
	err := session.Query(g.selectOrder(), id).WithContext(ctx).Idempotent(true).Scan(OrderRowDest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return OrderRow{}, false, nil
	}
	if err != nil {
		return OrderRow{}, false, fmt.Errorf("reading order %s: %w", id, err)
	}
	NormalizeOrder(&r)
	return r, true, nil
}

// ReadCustomer returns the customer_read_model row of the customer
// (generation 1), or false when there is none.
func ReadCustomer(ctx context.Context, session *gocql.Session, id gocql.UUID) (CustomerRow, bool, error) {
	return Generation(1).ReadCustomer(ctx, session, id)
}

// ReadCustomer returns the customer_read_model row of the customer, or
// false when there is none.
func (g Generation) ReadCustomer(ctx context.Context, session *gocql.Session, id gocql.UUID) (CustomerRow, bool, error) {
	var r CustomerRow
	err := session.Query(g.selectCustomer(), id).WithContext(ctx).Idempotent(true).Scan(customerRowDest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return CustomerRow{}, false, nil
	}
	if err != nil {
		return CustomerRow{}, false, fmt.Errorf("reading customer %s: %w", id, err)
	}
	normalizeCustomer(&r)
	return r, true, nil
}

// OrdersOfCustomer returns every order of the customer, newest first
// (generation 1).
func OrdersOfCustomer(ctx context.Context, session *gocql.Session, customerID gocql.UUID) ([]CustomerOrderRow, error) {
	return Generation(1).OrdersOfCustomer(ctx, session, customerID)
}

// OrdersOfCustomer returns every order of the customer, newest first.
func (g Generation) OrdersOfCustomer(ctx context.Context, session *gocql.Session, customerID gocql.UUID) ([]CustomerOrderRow, error) {
	iter := session.Query(g.selectOrdersOfCustomer(), customerID).WithContext(ctx).Idempotent(true).Iter()
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

// OrdersOfCustomerPage is Generation(1).OrdersOfCustomerPage.
func OrdersOfCustomerPage(ctx context.Context, session *gocql.Session, customerID gocql.UUID, c Created, size int, token []byte) ([]CustomerOrderRow, []byte, error) {
	return Generation(1).OrdersOfCustomerPage(ctx, session, customerID, c, size, token)
}

// OrdersOfCustomerPage returns at most size orders of the customer created
// within c, newest first, starting where the page token (nil: at the
// start) says, and the token of the next page (nil after the last). A
// page token is valid in the generation it came from only.
func (g Generation) OrdersOfCustomerPage(ctx context.Context, session *gocql.Session, customerID gocql.UUID, c Created, size int, token []byte) ([]CustomerOrderRow, []byte, error) {
	stmt, args := c.restrict(g.selectOrdersOfCustomer(), customerID)
	q := session.Query(stmt, args...).WithContext(ctx).Idempotent(true)
	rows, next, err := scanPage(q, size, token, CustomerOrderRowDest, NormalizeCustomerOrder)
	if err != nil {
		return nil, nil, fmt.Errorf("reading orders of customer %s: %w", customerID, err)
	}
	return rows, next, nil
}

// OrdersWithStatus returns every order with the status, newest first
// (generation 1).
func OrdersWithStatus(ctx context.Context, session *gocql.Session, status value.OrderStatus) ([]StatusOrderRow, error) {
	return Generation(1).OrdersWithStatus(ctx, session, status)
}

// OrdersWithStatus returns every order with the status, newest first.
func (g Generation) OrdersWithStatus(ctx context.Context, session *gocql.Session, status value.OrderStatus) ([]StatusOrderRow, error) {
	iter := session.Query(g.selectOrdersWithStatus(), status.String()).WithContext(ctx).Idempotent(true).Iter()
	rows, err := scanAll(iter, StatusOrderRowDest, NormalizeStatusOrder)
	if err != nil {
		return nil, fmt.Errorf("reading %s orders: %w", status, err)
	}
	return rows, nil
}

// OrdersWithStatusPage is Generation(1).OrdersWithStatusPage.
func OrdersWithStatusPage(ctx context.Context, session *gocql.Session, status value.OrderStatus, c Created, size int, token []byte) ([]StatusOrderRow, []byte, error) {
	return Generation(1).OrdersWithStatusPage(ctx, session, status, c, size, token)
}

// OrdersWithStatusPage returns at most size orders with the status created
// within c, newest first, starting where the page token (nil: at the
// start) says, and the token of the next page (nil after the last). A
// page token is valid in the generation it came from only.
func (g Generation) OrdersWithStatusPage(ctx context.Context, session *gocql.Session, status value.OrderStatus, c Created, size int, token []byte) ([]StatusOrderRow, []byte, error) {
	stmt, args := c.restrict(g.selectOrdersWithStatus(), status.String())
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
