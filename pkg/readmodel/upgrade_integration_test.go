package readmodel_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/migrate"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The rows of the three order views as projectors before schema v0005
// wrote them: without the columns v0005 added.
const (
	insertOrderV0001      = `INSERT INTO order_read_model (order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertByCustomerV0001 = `INSERT INTO orders_by_customer (customer_id, created_at, order_id, status, version) VALUES (?, ?, ?, ?, ?)`
	insertByStatusV0001   = `INSERT INTO orders_by_status (status, created_at, order_id, customer_id, version) VALUES (?, ?, ?, ?, ?)`
)

// An upgrade: a keyspace at schema v0004 holds rows the projectors of
// then wrote; the migrator applies v0005 over them; the rows lack the new
// columns, which the checker reports; the projectors' existing rebuild
// (POST /rebuild on their admin port, docs/runbook.md) fills them, and the
// read models then equal the fold of event_store exactly.
func TestRebuildFillsTheColumnsOfV0005(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := stacktest.RequireCQL(t)
	keyspace := stacktest.UniqueName("rmup_")
	admin, err := cql.Connect(ctx, c, "", zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = admin.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
		admin.Close()
	})
	flavour, err := cql.DetectFlavour(ctx, admin)
	require.NoError(t, err)
	migrations, err := migrate.Load(os.DirFS(stacktest.SchemaDir(t)), flavour, keyspace)
	require.NoError(t, err)
	v5 := slices.IndexFunc(migrations, func(m migrate.Migration) bool { return m.Version == 5 })
	require.Positive(t, v5, "schema v0005 exists")
	migrator := migrate.New(admin, keyspace, flavour, migrate.DefaultConfig(), zerolog.Nop())
	_, err = migrator.Apply(ctx, migrations[:v5])
	require.NoError(t, err)
	session, err := cql.Connect(ctx, c, keyspace, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(session.Close)
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 3}, zerolog.Nop(), nil)
	require.NoError(t, err)
	do := func(id gocql.UUID, cmds ...order.Command) {
		t.Helper()
		for _, cmd := range cmds {
			_, err := orders.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: gocql.MustRandomUUID().String(), Now: time.Now().UTC()})
			require.NoError(t, err)
		}
	}
	cust := gocql.MustRandomUUID()
	create := func(id gocql.UUID) order.Command {
		return order.CreateOrder{OrderID: id.String(), CustomerID: cust.String(), Items: []value.OrderItem{item(t, "sku-1", 2, 1250, "EUR")}}
	}
	shipped, cancelled, open := gocql.MustRandomUUID(), gocql.MustRandomUUID(), gocql.MustRandomUUID()
	do(shipped, create(shipped), order.ConfirmOrder{}, order.ShipOrder{Carrier: "DHL", TrackingNumber: "T1"}, order.DeliverOrder{Signature: "S"})
	do(cancelled, create(cancelled), order.CancelOrder{Reason: "changed mind", CancelledBy: "customer"})
	do(open, create(open))

	// The rows of before the upgrade.
	for _, id := range []gocql.UUID{shipped, cancelled, open} {
		var s readmodel.Order
		require.NoError(t, store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
			e, err := eventcodec.NewUpcasters().Upcast(e)
			if err == nil {
				s, err = readmodel.FoldOrder(s, e)
			}
			return err
		}))
		r, err := readmodel.OrderRowOf(id, s, s.State.Version)
		require.NoError(t, err)
		var deletedAt any
		if r.IsDeleted {
			deletedAt = r.DeletedAt
		}
		require.NoError(t, session.Query(insertOrderV0001, r.OrderID, r.CustomerID, r.Items, r.Status, r.CreatedAt, r.UpdatedAt, r.Version, r.IsDeleted, deletedAt).Exec())
		require.NoError(t, session.Query(insertByCustomerV0001, r.CustomerID, r.CreatedAt, r.OrderID, r.Status, r.Version).Exec())
		require.NoError(t, session.Query(insertByStatusV0001, r.Status, r.CreatedAt, r.OrderID, r.CustomerID, r.Version).Exec())
	}
	res, err := migrator.Apply(ctx, migrations)
	require.NoError(t, err)
	require.Equal(t, []int{5}, res.Applied[:1], "the upgrade applies v0005")
	rep, err := readmodeltest.Check(ctx, session, store)
	require.NoError(t, err)
	require.False(t, rep.OK())
	for _, table := range []string{readmodel.OrderReadModelTable, readmodel.OrdersByCustomerTable, readmodel.OrdersByStatusTable} {
		require.Equal(t, readmodeltest.TableCounts{Expected: 3, Actual: 3, Wrong: 3}, rep.Tables[table], "%s before the rebuild: %s", table, rep)
	}
	require.Contains(t, rep.String(), "Carrier: want DHL, got ")

	// Nothing else consumes here: the scan need not wait for other members.
	cfg := projector.DefaultConfig()
	cfg.GenerationRefresh, cfg.GenerationMaxStale = 10*time.Millisecond, 10*time.Millisecond
	for _, v := range []projector.View[readmodel.Order]{readmodel.OrderReadModel(), readmodel.OrdersByCustomer(), readmodel.OrdersByStatus()} {
		p, err := projector.New(cfg, v, session, store, zerolog.Nop(), nil)
		require.NoError(t, err)
		require.NoError(t, p.Rebuild(ctx), v.Name)
		require.Equal(t, 2, p.ActiveGeneration(), "the rebuild wrote generation 2 and switched to it")
	}
	rep, err = readmodeltest.CheckTables(ctx, session, store, readmodel.OrderReadModelTable, readmodel.OrdersByCustomerTable, readmodel.OrdersByStatusTable)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())

	gen := readmodel.Generation(2) // the rebuilt tables, which readers now use
	r, ok, err := gen.ReadOrder(ctx, session, shipped)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "DHL", r.Carrier)
	require.Equal(t, "S", r.DeliverySignature)
	require.False(t, r.ShippedAt.IsZero())
	require.Equal(t, 2, r.ItemCount)
	require.Equal(t, map[string]int64{"EUR": 2500}, r.Totals)
	r, _, err = gen.ReadOrder(ctx, session, cancelled)
	require.NoError(t, err)
	require.Equal(t, "changed mind", r.CancelReason)
}
