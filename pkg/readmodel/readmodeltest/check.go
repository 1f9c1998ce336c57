// Package readmodeltest checks, for integration tests, that the read-model
// tables are exactly what the event store says they should be.
//
// The checker computes the expected rows on its own — it folds each
// aggregate's events with the domain's ApplyAll and builds the rows itself,
// sharing only the row types with package readmodel — so that a bug in the
// views' Fold or Write does not hide itself. It reads whole tables, which
// suits the small private keyspaces of tests and nothing else.
package readmodeltest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// MaxPrinted is how many mismatches Report.String shows.
const MaxPrinted = 20

// Report is what a check found.
type Report struct {
	// Aggregates is the number of aggregates whose events were folded.
	Aggregates int
	// Tables has the counts of each table checked.
	Tables map[string]TableCounts
	// Mismatches describes every difference, one line each, grouped by
	// table and sorted within a table.
	Mismatches []string
	// Unreadable names the aggregates whose history stops at an event that
	// cannot be read (upcast, decoded, or applied to an aggregate that
	// exists). A projector dead-letters such an event and parks the
	// aggregate, so the checker expects the rows of the events before it;
	// they are not mismatches.
	Unreadable []string
}

// TableCounts counts the rows of one table.
type TableCounts struct {
	Expected int // rows the events call for
	Actual   int // rows in the table
	Missing  int // expected rows absent from the table
	Extra    int // rows in the table that no event calls for
	Wrong    int // rows under an expected key with a wrong column
}

// OK reports whether the tables are exactly as expected.
func (r Report) OK() bool { return len(r.Mismatches) == 0 }

// String summarises the report, with at most MaxPrinted mismatches.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d aggregates", r.Aggregates)
	tables := make([]string, 0, len(r.Tables))
	for t := range r.Tables {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, t := range tables {
		c := r.Tables[t]
		fmt.Fprintf(&b, "; %s: %d expected, %d actual, %d missing, %d extra, %d wrong", t, c.Expected, c.Actual, c.Missing, c.Extra, c.Wrong)
	}
	for i, m := range r.Mismatches {
		if i == MaxPrinted {
			fmt.Fprintf(&b, "\n… and %d more mismatches", len(r.Mismatches)-MaxPrinted)
			break
		}
		b.WriteString("\n")
		b.WriteString(m)
	}
	for _, u := range r.Unreadable {
		b.WriteString("\nunreadable: ")
		b.WriteString(u)
	}
	return b.String()
}

// EventStore is what a check reads of the event store: every aggregate's
// head and its events. *eventstore.Store and its in-memory twin
// (eventstore/memstore) satisfy it.
type EventStore interface {
	Heads(ctx context.Context, fn func(eventstore.Head) error) error
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error
}

// Check compares every read-model table with the event store.
func Check(ctx context.Context, session *gocql.Session, store EventStore) (Report, error) {
	return CheckTables(ctx, session, store, readmodel.Tables()...)
}

// CheckTables compares the named read-model tables (readmodel.Tables) with
// the event store, each in its view's active generation
// (projector.ReadGenerations); the report names them by their generation
// 1 names.
func CheckTables(ctx context.Context, session *gocql.Session, store EventStore, tables ...string) (Report, error) {
	gens, err := projector.ReadGenerations(ctx, session)
	if err != nil {
		return Report{}, err
	}
	active := func(base string) string {
		for _, v := range viewsOfTables {
			if v.table == base {
				if g, ok := gens[v.view]; ok {
					return projector.TableName(base, g.Active)
				}
			}
		}
		return base
	}
	want := map[string]bool{}
	for _, t := range tables {
		if !slices.Contains(readmodel.Tables(), t) {
			return Report{}, fmt.Errorf("%q is not a read-model table", t)
		}
		want[t] = true
	}
	needOrders := want[readmodel.OrderReadModelTable] || want[readmodel.OrdersByCustomerTable] || want[readmodel.OrdersByStatusTable]
	needCustomers := want[readmodel.CustomerReadModelTable]

	exp, rep, err := expectedRows(ctx, store, needOrders, needCustomers)
	if err != nil {
		return Report{}, err
	}
	rep.Tables = map[string]TableCounts{}
	checks := map[string]func(table string) error{ // table: the generation 1 name
		readmodel.OrderReadModelTable: func(table string) error {
			return checkTable(ctx, session, &rep, table, active(table),
				`order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at, `+
					`carrier, tracking_number, shipped_at, delivered_at, delivery_signature, cancel_reason, cancelled_by, item_count, totals`,
				func(r *readmodel.OrderRow) []any {
					return []any{&r.OrderID, &r.CustomerID, &r.Items, &r.Status, &r.CreatedAt, &r.UpdatedAt, &r.Version, &r.IsDeleted, &r.DeletedAt,
						&r.Carrier, &r.TrackingNumber, &r.ShippedAt, &r.DeliveredAt, &r.DeliverySignature, &r.CancelReason, &r.CancelledBy, &r.ItemCount, &r.Totals}
				},
				func(r readmodel.OrderRow) string { return r.OrderID.String() }, exp.orders)
		},
		readmodel.OrdersByCustomerTable: func(table string) error {
			return checkTable(ctx, session, &rep, table, active(table), `customer_id, created_at, order_id, status, version, item_count, totals, updated_at`,
				func(r *readmodel.CustomerOrderRow) []any {
					return []any{&r.CustomerID, &r.CreatedAt, &r.OrderID, &r.Status, &r.Version, &r.ItemCount, &r.Totals, &r.UpdatedAt}
				}, customerOrderKey, exp.byCustomer)
		},
		readmodel.OrdersByStatusTable: func(table string) error {
			return checkTable(ctx, session, &rep, table, active(table), `status, created_at, order_id, customer_id, version, item_count, totals, updated_at`,
				func(r *readmodel.StatusOrderRow) []any {
					return []any{&r.Status, &r.CreatedAt, &r.OrderID, &r.CustomerID, &r.Version, &r.ItemCount, &r.Totals, &r.UpdatedAt}
				}, statusOrderKey, exp.byStatus)
		},
		readmodel.CustomerReadModelTable: func(table string) error {
			return checkTable(ctx, session, &rep, table, active(table),
				`customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at`,
				func(r *readmodel.CustomerRow) []any {
					return []any{&r.CustomerID, &r.Name, &r.Email, &r.Phone, &r.Addresses, &r.Tier, &r.Status, &r.Version, &r.CreatedAt, &r.UpdatedAt}
				},
				func(r readmodel.CustomerRow) string { return r.CustomerID.String() }, exp.customers)
		},
	}
	for _, t := range readmodel.Tables() {
		if want[t] {
			if err := checks[t](t); err != nil {
				return Report{}, err
			}
		}
	}
	return rep, nil
}

// expected holds the rows the events call for, by key string.
type expected struct {
	orders     map[string]readmodel.OrderRow
	byCustomer map[string]readmodel.CustomerOrderRow
	byStatus   map[string]readmodel.StatusOrderRow
	customers  map[string]readmodel.CustomerRow
}

func expectedRows(ctx context.Context, store EventStore, orders, customers bool) (expected, Report, error) {
	exp := expected{
		orders:     map[string]readmodel.OrderRow{},
		byCustomer: map[string]readmodel.CustomerOrderRow{},
		byStatus:   map[string]readmodel.StatusOrderRow{},
		customers:  map[string]readmodel.CustomerRow{},
	}
	var rep Report
	type aggregate struct {
		id  gocql.UUID
		typ string
	}
	var aggs []aggregate
	if err := store.Heads(ctx, func(h eventstore.Head) error {
		aggs = append(aggs, aggregate{id: h.AggregateID, typ: h.AggregateType})
		return nil
	}); err != nil {
		return expected{}, Report{}, fmt.Errorf("listing aggregates: %w", err)
	}
	up := eventcodec.NewUpcasters()
	for _, a := range aggs {
		var err error
		switch {
		case a.typ == order.AggregateType && orders:
			err = expectAggregate(ctx, store, up, a.id, &exp, &rep, eventcodec.OrderCodec{}.DecodeEvent, orderCreated, expectOrder)
		case a.typ == customer.AggregateType && customers:
			err = expectAggregate(ctx, store, up, a.id, &exp, &rep, eventcodec.CustomerCodec{}.DecodeEvent, customerRegistered, expectCustomer)
		}
		if err != nil {
			return expected{}, Report{}, err
		}
	}
	return exp, rep, nil
}

// expectAggregate reads the history of aggregate id, counts it in rep, and
// records the rows it calls for in exp with expect; what cannot be read is
// reported as unreadable. An error is a failure to read the event store.
func expectAggregate[E any](ctx context.Context, store EventStore, up *eventstore.Upcasters, id gocql.UUID, exp *expected, rep *Report,
	decode func(string, []byte) (E, error), creates func(E) bool, expect func(*expected, gocql.UUID, history[E]) error) error {
	h, err := readHistory(ctx, store, up, id, decode, creates)
	if err != nil {
		return err
	}
	rep.Aggregates++
	if h.unreadable != "" {
		rep.Unreadable = append(rep.Unreadable, h.unreadable)
	}
	if len(h.events) == 0 {
		return nil
	}
	if err := expect(exp, id, h); err != nil {
		rep.Unreadable = append(rep.Unreadable, err.Error())
	}
	return nil
}

func orderCreated(e order.Event) bool {
	_, ok := e.(order.OrderCreated)
	return ok
}

func customerRegistered(e customer.Event) bool {
	_, ok := e.(customer.CustomerRegistered)
	return ok
}

// history is the readable prefix of an aggregate's events: its domain
// events, when each occurred and the sequence of the last.
type history[E any] struct {
	events     []E
	times      []time.Time
	lastSeq    int64
	unreadable string
}

// readHistory reads an aggregate's events up to the first it cannot read:
// one that does not upcast or decode, or that precedes the aggregate's
// creation event.
func readHistory[E any](ctx context.Context, store EventStore, up *eventstore.Upcasters, id gocql.UUID,
	decode func(string, []byte) (E, error), creates func(E) bool) (history[E], error) {
	var h history[E]
	err := store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
		if h.unreadable != "" {
			return nil
		}
		e, err := up.Upcast(e)
		var de E
		if err == nil {
			de, err = decode(e.Type, e.Data)
		}
		if err == nil && len(h.events) == 0 && !creates(de) {
			err = fmt.Errorf("%s before the aggregate's creation", e.Type)
		}
		if err != nil {
			h.unreadable = fmt.Sprintf("%s %s: event %d: %v", e.AggregateType, id, e.Sequence, err)
			return nil
		}
		h.events = append(h.events, de)
		h.times = append(h.times, e.OccurredAt.UTC().Truncate(time.Millisecond))
		h.lastSeq = e.Sequence
		return nil
	})
	if err != nil {
		return history[E]{}, fmt.Errorf("reading events of %s: %w", id, err)
	}
	return h, nil
}

func expectOrder(exp *expected, id gocql.UUID, h history[order.Event]) error {
	s := order.ApplyAll(order.State{}, h.events)
	customerID, err := gocql.ParseUUID(s.CustomerID)
	if err != nil {
		return fmt.Errorf("order %s: customer id %q is not a UUID", id, s.CustomerID)
	}
	createdAt, updatedAt := h.times[0], h.times[len(h.times)-1]
	row := readmodel.OrderRow{
		OrderID:    id,
		CustomerID: customerID,
		Status:     s.Status.String(),
		CreatedAt:  createdAt,
		UpdatedAt:  updatedAt,
		Version:    h.lastSeq,
	}
	for _, it := range s.Items {
		row.Items = append(row.Items, readmodel.OrderItemRow{
			ProductID: it.ProductID(), Quantity: int(it.Quantity()),
			UnitPriceMinor: it.UnitPrice().Amount(), Currency: it.UnitPrice().Currency().Code(),
		})
		// The domain refuses totals that overflow int64; the checker
		// trusts that and sums plainly.
		if row.Totals == nil {
			row.Totals = map[string]int64{}
		}
		row.Totals[it.UnitPrice().Currency().Code()] += it.Quantity() * it.UnitPrice().Amount()
		row.ItemCount += int(it.Quantity())
	}
	// The latest event of each kind says when, and the state what.
	for i, e := range h.events {
		switch e.(type) {
		case order.OrderShipped:
			row.ShippedAt = h.times[i]
		case order.OrderDelivered:
			row.DeliveredAt = h.times[i]
		case order.OrderCancelled:
			row.DeletedAt = h.times[i]
		}
	}
	row.Carrier, row.TrackingNumber, row.DeliverySignature = s.Carrier, s.TrackingNumber, s.Signature
	row.CancelReason, row.CancelledBy = s.CancelReason, s.CancelledBy
	if s.Status == value.OrderStatusCancelled {
		row.IsDeleted = true
	} else {
		row.DeletedAt = time.Time{}
	}
	exp.orders[id.String()] = row
	bc := readmodel.CustomerOrderRow{CustomerID: customerID, CreatedAt: createdAt, OrderID: id, Status: row.Status, Version: h.lastSeq,
		ItemCount: row.ItemCount, Totals: row.Totals, UpdatedAt: updatedAt}
	exp.byCustomer[customerOrderKey(bc)] = bc
	bs := readmodel.StatusOrderRow{Status: row.Status, CreatedAt: createdAt, OrderID: id, CustomerID: customerID, Version: h.lastSeq,
		ItemCount: row.ItemCount, Totals: row.Totals, UpdatedAt: updatedAt}
	exp.byStatus[statusOrderKey(bs)] = bs
	return nil
}

func expectCustomer(exp *expected, id gocql.UUID, h history[customer.Event]) error {
	s := customer.ApplyAll(customer.State{}, h.events)
	name, email, phone := s.Name, s.Email.String(), s.Phone.String()
	if s.Forgotten {
		// The view scrubs a forgotten customer's row to the marker.
		name, email, phone = personal.Redacted, personal.Redacted, personal.Redacted
	}
	row := readmodel.CustomerRow{
		CustomerID: id,
		Name:       name,
		Email:      email,
		Phone:      phone,
		Tier:       s.Tier.String(),
		Status:     s.Status.String(),
		Version:    h.lastSeq,
		CreatedAt:  h.times[0],
		UpdatedAt:  h.times[len(h.times)-1],
	}
	for _, a := range s.Addresses {
		aid, err := gocql.ParseUUID(a.ID)
		if err != nil {
			return fmt.Errorf("customer %s: address id %q is not a UUID", id, a.ID)
		}
		if row.Addresses == nil {
			row.Addresses = map[gocql.UUID]readmodel.AddressRow{}
		}
		row.Addresses[aid] = readmodel.AddressRow{
			Label: a.Address.Label(), Line1: a.Address.Line1(), Line2: a.Address.Line2(), City: a.Address.City(),
			Region: a.Address.Region(), PostalCode: a.Address.PostalCode(), Country: a.Address.Country().String(),
		}
	}
	exp.customers[id.String()] = row
	return nil
}

func customerOrderKey(r readmodel.CustomerOrderRow) string {
	return fmt.Sprintf("(%s, %s, %s)", r.CustomerID, formatTime(r.CreatedAt), r.OrderID)
}

func statusOrderKey(r readmodel.StatusOrderRow) string {
	return fmt.Sprintf("(%s, %s, %s)", r.Status, formatTime(r.CreatedAt), r.OrderID)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "null"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// viewsOfTables names the view that owns each read-model table.
var viewsOfTables = []struct{ view, table string }{
	{"order-read-model", readmodel.OrderReadModelTable},
	{"orders-by-customer", readmodel.OrdersByCustomerTable},
	{"orders-by-status", readmodel.OrdersByStatusTable},
	{"customer-read-model", readmodel.CustomerReadModelTable},
}

// checkTable reads the columns of a whole table (named stored in its
// active generation), rows keyed by key, and records in rep how they
// differ from want.
func checkTable[R any](ctx context.Context, session *gocql.Session, rep *Report, table, stored, columns string,
	dest func(*R) []any, key func(R) string, want map[string]R) error {
	got, err := scanTable(ctx, session, `SELECT `+columns+` FROM `+stored, dest, key)
	if err != nil {
		return err
	}
	compare(rep, table, want, got)
	return nil
}

// scanTable reads a whole table, page by page, keyed by key.
func scanTable[R any](ctx context.Context, session *gocql.Session, stmt string, dest func(*R) []any, key func(R) string) (map[string]R, error) {
	rows := map[string]R{}
	iter := session.Query(stmt).WithContext(ctx).PageSize(1000).Iter()
	var r R
	for iter.Scan(dest(&r)...) {
		rows[key(r)] = normalize(r)
		r = *new(R)
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading %q: %w", stmt, err)
	}
	return rows, nil
}

// normalize gives empty collections the one spelling the expected rows
// use: nil.
func normalize[R any](r R) R {
	switch v := any(&r).(type) {
	case *readmodel.OrderRow:
		if len(v.Items) == 0 {
			v.Items = nil
		}
		if len(v.Totals) == 0 {
			v.Totals = nil
		}
	case *readmodel.CustomerOrderRow:
		if len(v.Totals) == 0 {
			v.Totals = nil
		}
	case *readmodel.StatusOrderRow:
		if len(v.Totals) == 0 {
			v.Totals = nil
		}
	case *readmodel.CustomerRow:
		if len(v.Addresses) == 0 {
			v.Addresses = nil
		}
	}
	return r
}

// compare records the differences between the expected and the actual rows
// of a table.
func compare[R any](rep *Report, table string, want, got map[string]R) {
	c := TableCounts{Expected: len(want), Actual: len(got)}
	var lines []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			c.Missing++
			lines = append(lines, fmt.Sprintf("%s %s: missing, want %+v", table, k, w))
			continue
		}
		if diffs := diffFields(w, g); len(diffs) > 0 {
			c.Wrong++
			lines = append(lines, fmt.Sprintf("%s %s: %s", table, k, strings.Join(diffs, "; ")))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			c.Extra++
			lines = append(lines, fmt.Sprintf("%s %s: extra row %+v", table, k, g))
		}
	}
	slices.Sort(lines)
	rep.Mismatches = append(rep.Mismatches, lines...)
	rep.Tables[table] = c
}

// diffFields lists the fields of two structs that differ, as
// "Field: want x, got y".
func diffFields(want, got any) []string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	var diffs []string
	for i := range wv.NumField() {
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if wt, ok := w.(time.Time); ok {
			if gt := g.(time.Time); !wt.Equal(gt) {
				diffs = append(diffs, fmt.Sprintf("%s: want %s, got %s", wv.Type().Field(i).Name, formatTime(wt), formatTime(gt)))
			}
			continue
		}
		if !reflect.DeepEqual(w, g) {
			diffs = append(diffs, fmt.Sprintf("%s: want %+v, got %+v", wv.Type().Field(i).Name, w, g))
		}
	}
	return diffs
}
