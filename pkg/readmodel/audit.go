package readmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
)

// What the projectors' auditor (projector.Auditor) needs of each view:
// the rows a state calls for, each with its key and a digest of its
// content, and a reader of the view's table that looks a row up by key,
// walks the table by token range (to find rows no event calls for) and
// deletes rows. The table named here is generation 1's; the reader maps it
// to the live one (projector.TableName) on every statement.

// auditOf is the projector.ViewAudit of a view that owns one table.
func auditOf[S rowState, R any](t auditTable[S, R]) *projector.ViewAudit[S] {
	return &projector.ViewAudit[S]{
		Want: t.want,
		Rows: func(session *gocql.Session, table func(string) string) projector.ViewRows {
			return auditRows[S, R]{t: t, session: session, table: table}
		},
	}
}

// OrderReadModelAudit is the auditor's view of order_read_model.
func OrderReadModelAudit() *projector.ViewAudit[Order] { return auditOf(orderReadModelAudit) }

// OrdersByCustomerAudit is the auditor's view of orders_by_customer.
func OrdersByCustomerAudit() *projector.ViewAudit[Order] { return auditOf(ordersByCustomerAudit) }

// OrdersByStatusAudit is the auditor's view of orders_by_status.
func OrdersByStatusAudit() *projector.ViewAudit[Order] { return auditOf(ordersByStatusAudit) }

// CustomerReadModelAudit is the auditor's view of customer_read_model.
func CustomerReadModelAudit() *projector.ViewAudit[Customer] { return auditOf(customerReadModelAudit) }

// auditTable describes one view's table to the auditor.
type auditTable[S rowState, R any] struct {
	base      string   // generation 1's name
	columns   string   // the columns, in the order of dest
	partition string   // the partition key, for token()
	keyCols   []string // the primary key, in the order of key
	rowOf     func(id gocql.UUID, s S, version int64) (R, error)
	key       func(R) []any
	id        func(R) gocql.UUID // the aggregate
	version   func(R) int64
	dest      func(*R) []any
	norm      func(*R)
}

var orderReadModelAudit = auditTable[Order, OrderRow]{
	base: OrderReadModelTable, columns: OrderColumns, partition: "order_id", keyCols: []string{"order_id"},
	rowOf:   OrderRowOf,
	key:     func(r OrderRow) []any { return []any{r.OrderID} },
	id:      func(r OrderRow) gocql.UUID { return r.OrderID },
	version: func(r OrderRow) int64 { return r.Version },
	dest:    OrderRowDest, norm: NormalizeOrder,
}

var ordersByCustomerAudit = auditTable[Order, CustomerOrderRow]{
	base: OrdersByCustomerTable, columns: CustomerOrderColumns, partition: "customer_id", keyCols: []string{"customer_id", "created_at", "order_id"},
	rowOf:   customerOrderRowOf,
	key:     func(r CustomerOrderRow) []any { return []any{r.CustomerID, r.CreatedAt, r.OrderID} },
	id:      func(r CustomerOrderRow) gocql.UUID { return r.OrderID },
	version: func(r CustomerOrderRow) int64 { return r.Version },
	dest:    CustomerOrderRowDest, norm: NormalizeCustomerOrder,
}

var ordersByStatusAudit = auditTable[Order, StatusOrderRow]{
	base: OrdersByStatusTable, columns: StatusOrderColumns, partition: "status", keyCols: []string{"status", "created_at", "order_id"},
	rowOf:   statusOrderRowOf,
	key:     func(r StatusOrderRow) []any { return []any{r.Status, r.CreatedAt, r.OrderID} },
	id:      func(r StatusOrderRow) gocql.UUID { return r.OrderID },
	version: func(r StatusOrderRow) int64 { return r.Version },
	dest:    StatusOrderRowDest, norm: NormalizeStatusOrder,
}

var customerReadModelAudit = auditTable[Customer, CustomerRow]{
	base: CustomerReadModelTable, columns: customerColumns, partition: "customer_id", keyCols: []string{"customer_id"},
	rowOf:   CustomerRowOf,
	key:     func(r CustomerRow) []any { return []any{r.CustomerID} },
	id:      func(r CustomerRow) gocql.UUID { return r.CustomerID },
	version: func(r CustomerRow) int64 { return r.Version },
	dest:    customerRowDest, norm: normalizeCustomer,
}

// customerColumns are the columns of customer_read_model in the order of
// customerRowDest.
const customerColumns = `customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at`

// want is the row state s at seq calls for: none while the aggregate does
// not exist (Write writes nothing then).
func (t auditTable[S, R]) want(id gocql.UUID, s S, seq int64) ([]projector.AuditRow, error) {
	if !s.exists() {
		return nil, nil
	}
	r, err := t.rowOf(id, s, seq)
	if err != nil {
		return nil, err
	}
	return []projector.AuditRow{t.auditRow(r)}, nil
}

func (t auditTable[S, R]) auditRow(r R) projector.AuditRow {
	return projector.AuditRow{Table: t.base, Key: KeyString(t.key(r)...), AggregateID: t.id(r), Version: t.version(r), Digest: Digest(r), Value: r}
}

// KeyString prints a primary key: times as instants at millisecond
// precision, so that a key written and the same key read back print the
// same.
func KeyString(key ...any) string {
	parts := make([]string, len(key))
	for i, k := range key {
		if t, ok := k.(time.Time); ok {
			parts[i] = formatMillis(t)
			continue
		}
		parts[i] = fmt.Sprint(k)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func formatMillis(t time.Time) string {
	if t.IsZero() {
		return "null"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Digest is the canonical form of a row for comparison: its JSON (maps in
// key order, times in UTC). A row computed by a view and the same row read
// back and normalized have the same digest.
func Digest(row any) string {
	b, err := json.Marshal(row)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	return string(b)
}

// auditRows reads one view's table in a session.
type auditRows[S rowState, R any] struct {
	t       auditTable[S, R]
	session *gocql.Session
	table   func(string) string
}

func (a auditRows[S, R]) name() string { return a.table(a.t.base) }

func (a auditRows[S, R]) where() string {
	conds := make([]string, len(a.t.keyCols))
	for i, c := range a.t.keyCols {
		conds[i] = c + " = ?"
	}
	return strings.Join(conds, " AND ")
}

func (a auditRows[S, R]) keyOf(r projector.AuditRow) ([]any, error) {
	v, ok := r.Value.(R)
	if !ok {
		return nil, fmt.Errorf("a %T is not a row of %s", r.Value, a.t.base)
	}
	return a.t.key(v), nil
}

// Read reads the row at want's key.
func (a auditRows[S, R]) Read(ctx context.Context, want projector.AuditRow) (projector.AuditRow, bool, error) {
	key, err := a.keyOf(want)
	if err != nil {
		return projector.AuditRow{}, false, err
	}
	var r R
	err = a.session.Query(`SELECT `+a.t.columns+` FROM `+a.name()+` WHERE `+a.where(), key...).WithContext(ctx).Idempotent(true).Scan(a.t.dest(&r)...)
	if errors.Is(err, gocql.ErrNotFound) {
		return projector.AuditRow{}, false, nil
	}
	if err != nil {
		return projector.AuditRow{}, false, fmt.Errorf("reading %s %s: %w", a.name(), want.Key, err)
	}
	a.t.norm(&r)
	return a.t.auditRow(r), true, nil
}

// auditPageSize is the page size of the table walks: rows are small, and
// the auditor paces its checks, so a page lasts a while.
const auditPageSize = 500

// Scan walks the rows whose partition key's token is in rg.
func (a auditRows[S, R]) Scan(ctx context.Context, rg eventstore.TokenRange, fn func(projector.AuditRow) error) error {
	iter := a.session.Query(`SELECT `+a.t.columns+` FROM `+a.name()+` WHERE token(`+a.t.partition+`) >= ? AND token(`+a.t.partition+`) <= ?`, rg.First, rg.Last).
		WithContext(ctx).Idempotent(true).PageSize(auditPageSize).Iter()
	var r R
	for iter.Scan(a.t.dest(&r)...) {
		a.t.norm(&r)
		if err := fn(a.t.auditRow(r)); err != nil {
			_ = iter.Close()
			return err
		}
		r = *new(R)
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("reading %s (tokens %d..%d): %w", a.name(), rg.First, rg.Last, err)
	}
	return nil
}

// Delete adds the deletion of r to b.
func (a auditRows[S, R]) Delete(b *gocql.Batch, r projector.AuditRow) {
	key, err := a.keyOf(r)
	if err != nil {
		return // not a row of this table: nothing of it to delete
	}
	b.Query(`DELETE FROM `+a.name()+` WHERE `+a.where(), key...)
}

// Remove deletes rows in one logged batch.
func (a auditRows[S, R]) Remove(ctx context.Context, rows []projector.AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	b := a.session.Batch(gocql.LoggedBatch).WithContext(ctx)
	for _, r := range rows {
		a.Delete(b, r)
	}
	if err := a.session.ExecuteBatch(b); err != nil {
		return fmt.Errorf("deleting %d rows of %s: %w", len(rows), a.name(), err)
	}
	return nil
}

// orderAudit is the auditor's view of the order table called base.
func orderAudit(base string) *projector.ViewAudit[Order] {
	switch base {
	case OrderReadModelTable:
		return OrderReadModelAudit()
	case OrdersByCustomerTable:
		return OrdersByCustomerAudit()
	case OrdersByStatusTable:
		return OrdersByStatusAudit()
	}
	return nil
}
