package readmodel_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The projector writes a view's rows first and the checkpoint after
// (projector.Checkpoints). These tests hold both implementations, the CQL
// one and its in-memory twin, to what makes that safe, for each of the four
// views: a crash between the rows and the checkpoint, followed by the same
// record applied again from the old checkpoint (it was not marked
// consumed), leaves exactly the rows and the checkpoint of a clean apply;
// and so does a crash followed by a write from the old checkpoint that
// folds one event further (a retry of a re-drive, a repair, a rebuild's
// scan), which is what the logged batch of a moving row is for.

// checkpointsBackend is one implementation of the checkpoints, with a way to
// make its next commit crash after the rows and a way to read the rows.
type checkpointsBackend struct {
	cps projector.Checkpoints
	// crash makes the next commit fail with err after its rows.
	crash func(err error)
	// rows returns the rows of the view's tables that name id, each as a
	// string in which equal rows are equal.
	rows func(t *testing.T, view string, tables []string, id gocql.UUID) []string
}

// aggregate is one run's aggregate: its id and, for an order, its
// customer's.
type aggregate struct{ id, customer gocql.UUID }

func newAggregate() aggregate { return aggregate{gocql.MustRandomUUID(), gocql.MustRandomUUID()} }

// viewCase is a view and the events of one aggregate of it.
type viewCase struct {
	name string
	run  func(t *testing.T, b checkpointsBackend)
}

func viewCases() []viewCase {
	orderLife := func(t testing.TB, a aggregate) []eventstore.Event {
		return orderEvents(t, a.id,
			order.OrderCreated{OrderID: a.id.String(), CustomerID: a.customer.String(),
				Items: []value.OrderItem{item(t, "sku-1", 2, 1250, "EUR")}, Currency: currencyOf(t, "EUR")},
			order.OrderItemsUpdated{Items: []value.OrderItem{item(t, "sku-2", 1, 999, "EUR")}},
			order.OrderConfirmed{},
			order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1"},
			order.OrderDelivered{Signature: "J. Doe"},
		)
	}
	customerLife := func(t testing.TB, a aggregate) []eventstore.Event {
		return customerEvents(t, a.id,
			customer.CustomerRegistered{CustomerID: a.id.String(), Name: "Ada Lovelace", Email: email(t, "ada@example.com"),
				Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
			customer.CustomerAddressAdded{AddressID: homeID.String(), Address: address(t, "home", "12 St James Sq", "London")},
			customer.CustomerEmailChanged{Email: email(t, "ada@lovelace.example")},
			customer.CustomerPhoneChanged{Phone: phone(t, "+491701234567")},
		)
	}
	return []viewCase{
		{"order-read-model", func(t *testing.T, b checkpointsBackend) { crashContract(t, b, readmodel.OrderReadModel(), orderLife) }},
		{"orders-by-customer", func(t *testing.T, b checkpointsBackend) { crashContract(t, b, readmodel.OrdersByCustomer(), orderLife) }},
		{"orders-by-status", func(t *testing.T, b checkpointsBackend) { crashContract(t, b, readmodel.OrdersByStatus(), orderLife) }},
		{"customer-read-model", func(t *testing.T, b checkpointsBackend) {
			crashContract(t, b, readmodel.CustomerReadModel(), customerLife)
		}},
	}
}

// crashContract applies an aggregate's events one record at a time to a
// clean aggregate and to one whose commits crash between the rows and the
// checkpoint, and compares the two after every record.
func crashContract[S any](t *testing.T, b checkpointsBackend, v projector.View[S], life func(testing.TB, aggregate) []eventstore.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crash := errors.New("crashed between the rows and the checkpoint")

	// apply folds events after the stored checkpoint and commits, as the
	// projector does.
	apply := func(a aggregate, events ...eventstore.Event) error {
		seq, state, found, err := b.cps.Load(ctx, v.Name, a.id)
		require.NoError(t, err)
		require.Equal(t, events[0].Sequence, seq+1, "the events follow the checkpoint")
		var old S
		if found {
			require.NoError(t, json.Unmarshal([]byte(state), &old))
		}
		s := fold(t, v, old, events...)
		last := events[len(events)-1].Sequence
		encoded, err := json.Marshal(s)
		require.NoError(t, err)
		return b.cps.Commit(ctx, v.Name, a.id, last, string(encoded), func(batch *gocql.Batch) error {
			return v.Write(batch, a.id, old, found, s, last)
		})
	}
	// snapshot is the aggregate's checkpoint and rows, its ids replaced by
	// placeholders.
	snapshot := func(a aggregate) []string {
		seq, state, found, err := b.cps.Load(ctx, v.Name, a.id)
		require.NoError(t, err)
		out := append([]string{fmt.Sprintf("checkpoint %t %d %s", found, seq, state)}, b.rows(t, v.Name, v.Tables, a.id)...)
		for i := range out {
			out[i] = strings.NewReplacer(a.id.String(), "<id>", a.customer.String(), "<customer>").Replace(out[i])
		}
		return out
	}

	t.Run("the same record again", func(t *testing.T) {
		clean, crashed := newAggregate(), newAggregate()
		cleanEvents, crashedEvents := life(t, clean), life(t, crashed)
		for i := range cleanEvents {
			require.NoError(t, apply(clean, cleanEvents[i]))
			b.crash(crash)
			require.ErrorIs(t, apply(crashed, crashedEvents[i]), crash)
			require.NoError(t, apply(crashed, crashedEvents[i]), "consumed again from the old checkpoint")
			require.Equal(t, snapshot(clean), snapshot(crashed), "after event %d", i+1)
		}
	})

	t.Run("a write from the old checkpoint that folds further", func(t *testing.T) {
		clean, crashed := newAggregate(), newAggregate()
		cleanEvents, crashedEvents := life(t, clean), life(t, crashed)
		require.NoError(t, apply(clean, cleanEvents[0]))
		require.NoError(t, apply(crashed, crashedEvents[0]))
		for i := 1; i+1 < len(cleanEvents); i += 2 {
			require.NoError(t, apply(clean, cleanEvents[i], cleanEvents[i+1]))
			b.crash(crash)
			require.ErrorIs(t, apply(crashed, crashedEvents[i]), crash)
			require.NoError(t, apply(crashed, crashedEvents[i], crashedEvents[i+1]), "events %d and %d from the old checkpoint", i+1, i+2)
			require.Equal(t, snapshot(clean), snapshot(crashed), "after event %d", i+2)
		}
	})

	t.Run("from nothing, folding further", func(t *testing.T) {
		clean, crashed := newAggregate(), newAggregate()
		cleanEvents, crashedEvents := life(t, clean), life(t, crashed)
		require.NoError(t, apply(clean, cleanEvents[:3]...))
		b.crash(crash)
		require.ErrorIs(t, apply(crashed, crashedEvents[0]), crash)
		require.NoError(t, apply(crashed, crashedEvents[:3]...))
		require.Equal(t, snapshot(clean), snapshot(crashed))
	})
}

func TestMemoryCheckpointsCrashBetweenRowsAndCheckpoint(t *testing.T) {
	for _, vc := range viewCases() {
		t.Run(vc.name, func(t *testing.T) {
			cps := projector.NewMemoryCheckpoints()
			vc.run(t, checkpointsBackend{cps: cps, crash: cps.FailAfterRows, rows: func(t *testing.T, view string, _ []string, id gocql.UUID) []string {
				return applyStatements(t, cps.Written(view, id))
			}})
		})
	}
}

func TestCheckpointsCrashBetweenRowsAndCheckpoint(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "rmcrash_")
	for _, vc := range viewCases() {
		t.Run(vc.name, func(t *testing.T) {
			var next oneError
			vc.run(t, checkpointsBackend{
				cps:   projector.NewCheckpoints(session, projector.AfterRows(next.take)),
				crash: next.set,
				rows: func(t *testing.T, _ string, tables []string, id gocql.UUID) []string {
					var out []string
					for _, table := range tables {
						iter := session.Query(`SELECT JSON * FROM ` + table).Iter()
						var row string
						for iter.Scan(&row) {
							if strings.Contains(row, id.String()) {
								out = append(out, table+" "+row)
							}
						}
						require.NoError(t, iter.Close())
					}
					slices.Sort(out)
					return out
				},
			})
		})
	}
}

// oneError is an error returned once.
type oneError struct {
	mu  sync.Mutex
	err error
}

func (o *oneError) set(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.err = err
}

func (o *oneError) take() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.err
	o.err = nil
	return err
}

// primaryKeys are the primary key columns of the views' tables.
var primaryKeys = map[string][]string{
	"order_read_model":    {"order_id"},
	"orders_by_customer":  {"customer_id", "created_at", "order_id"},
	"orders_by_status":    {"status", "created_at", "order_id"},
	"customer_read_model": {"customer_id"},
}

// applyStatements applies the views' INSERT and DELETE statements, in
// order, to tables in memory (last write wins, as with growing
// timestamps) and returns their rows, sorted.
func applyStatements(t *testing.T, writes []projector.RowsWrite) []string {
	t.Helper()
	tables := map[string]map[string]string{}
	for _, w := range writes {
		for _, e := range w.Entries {
			table, cols := parseStatement(t, e.Stmt)
			pk, ok := primaryKeys[table]
			require.True(t, ok, "a table of the views: %s", table)
			require.Len(t, e.Args, len(cols), e.Stmt)
			values := map[string]string{}
			for i, c := range cols {
				values[c] = fmt.Sprintf("%v", e.Args[i])
			}
			var key []string
			for _, c := range pk {
				v, ok := values[c]
				require.True(t, ok, "%s binds %s", e.Stmt, c)
				key = append(key, v)
			}
			if tables[table] == nil {
				tables[table] = map[string]string{}
			}
			k := strings.Join(key, "|")
			if strings.HasPrefix(e.Stmt, "DELETE") {
				delete(tables[table], k)
				continue
			}
			var row []string
			for _, c := range cols {
				row = append(row, c+"="+values[c])
			}
			tables[table][k] = table + " " + strings.Join(row, " ")
		}
	}
	var out []string
	for _, rows := range tables {
		for _, r := range rows {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// parseStatement returns the table and the bound columns, in order, of
// `INSERT INTO t (a, b) VALUES (?, ?)` or `DELETE FROM t WHERE a = ? AND b = ?`.
func parseStatement(t *testing.T, stmt string) (string, []string) {
	t.Helper()
	if rest, ok := strings.CutPrefix(stmt, "INSERT INTO "); ok {
		table, rest, ok := strings.Cut(rest, " (")
		require.True(t, ok, stmt)
		list, _, ok := strings.Cut(rest, ")")
		require.True(t, ok, stmt)
		return table, strings.Split(list, ", ")
	}
	rest, ok := strings.CutPrefix(stmt, "DELETE FROM ")
	require.True(t, ok, "an INSERT or a DELETE: %s", stmt)
	table, where, ok := strings.Cut(rest, " WHERE ")
	require.True(t, ok, stmt)
	var cols []string
	for _, cond := range strings.Split(where, " AND ") {
		col, _, ok := strings.Cut(cond, " = ?")
		require.True(t, ok, stmt)
		cols = append(cols, col)
	}
	return table, cols
}

// Only a row that moves to another key asks for a logged batch: in
// orders_by_status, the order's first row and each status change.
func TestViewsAskForALoggedBatchOnlyWhenARowMoves(t *testing.T) {
	a := newAggregate()
	orders := orderEvents(t, a.id,
		order.OrderCreated{OrderID: a.id.String(), CustomerID: a.customer.String(),
			Items: []value.OrderItem{item(t, "sku-1", 2, 1250, "EUR")}, Currency: currencyOf(t, "EUR")},
		order.OrderItemsUpdated{Items: []value.OrderItem{item(t, "sku-2", 1, 999, "EUR")}},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "T1"},
		order.OrderCancelled{Reason: "lost", CancelledBy: "ops", PreviousStatus: value.OrderStatusShipped},
	)
	customers := customerEvents(t, a.id,
		customer.CustomerRegistered{CustomerID: a.id.String(), Name: "Ada Lovelace", Email: email(t, "ada@example.com"),
			Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerEmailChanged{Email: email(t, "ada@lovelace.example")},
	)
	for _, tt := range []struct {
		name   string
		logged func() []bool
	}{
		{"order-read-model", func() []bool { return loggedWrites(t, readmodel.OrderReadModel(), a.id, orders) }},
		{"orders-by-customer", func() []bool { return loggedWrites(t, readmodel.OrdersByCustomer(), a.id, orders) }},
		{"customer-read-model", func() []bool { return loggedWrites(t, readmodel.CustomerReadModel(), a.id, customers) }},
	} {
		require.NotContains(t, tt.logged(), true, tt.name)
	}
	require.Equal(t, []bool{true, false, true, true, true}, loggedWrites(t, readmodel.OrdersByStatus(), a.id, orders),
		"created, items updated in place, confirmed, shipped, cancelled")
}

// loggedWrites writes the view's rows event by event and says which asked
// for a logged batch.
func loggedWrites[S any](t *testing.T, v projector.View[S], id gocql.UUID, events []eventstore.Event) []bool {
	t.Helper()
	var (
		state   S
		existed bool
		out     []bool
	)
	for _, e := range events {
		s := fold(t, v, state, e)
		b := &gocql.Batch{Type: gocql.UnloggedBatch}
		require.NoError(t, v.Write(b, id, state, existed, s, e.Sequence))
		require.NotEmpty(t, b.Entries)
		out = append(out, b.Type == gocql.LoggedBatch)
		state, existed = roundTrip(t, s), true
	}
	return out
}
