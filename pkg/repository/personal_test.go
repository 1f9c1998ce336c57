package repository_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
)

// The personal values of sealedWorld's customer: none of them may be found
// in clear in what the store holds.
var personalValues = []string{"Ada Lovelace", "ada@example.org", "+442079460958", "12 St James", "London", "SW1Y 4JH", "Ada L. signed"}

type sealedWorld struct {
	mem       *memstore.Store
	keys      *personal.Keyring
	orders    *repository.Orders
	customers *repository.Customers
	// clear are repositories on the same store without sealing: how the
	// service wrote before personal data was switched on.
	clearOrders    *repository.Orders
	clearCustomers *repository.Customers
}

func newSealedWorld(t *testing.T, snapshotEvery int) sealedWorld {
	t.Helper()
	cfg := eventstore.DefaultConfig()
	cfg.SnapshotEvery = snapshotEvery
	mem, err := memstore.New(cfg)
	require.NoError(t, err)
	w, err := personal.NewFileWrapper(bytes.Repeat([]byte{7}, personal.KeySize))
	require.NoError(t, err)
	pc := personal.DefaultConfig()
	pc.KEKFile = "unused"
	keys, err := personal.NewKeyring(pc, personal.NewMemStore(), w, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	sealing, err := repository.NewSealing(mem, keys, up, 100, zerolog.Nop())
	require.NoError(t, err)
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 3}
	sw := sealedWorld{mem: mem, keys: keys}
	sw.orders = must(repository.NewOrders(sealing, up, rc, zerolog.Nop(), nil))
	sw.customers = must(repository.NewCustomers(sealing, up, rc, zerolog.Nop(), nil))
	sw.clearOrders = must(repository.NewOrders(mem, up, rc, zerolog.Nop(), nil))
	sw.clearCustomers = must(repository.NewCustomers(mem, up, rc, zerolog.Nop(), nil))
	return sw
}

// stored is everything the store holds of an aggregate: event data and
// snapshot state.
func (w sealedWorld) stored(t *testing.T, id gocql.UUID) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, w.mem.Events(context.Background(), id, 0, 0, func(e eventstore.Event) error {
		b.Write(e.Data)
		b.WriteByte('\n')
		return nil
	}))
	if snap, ok, err := w.mem.LatestSnapshot(context.Background(), id, 0); err == nil && ok {
		b.Write(snap.State)
	}
	return b.String()
}

func requireNoClearPersonalData(t *testing.T, stored string) {
	t.Helper()
	rest := personal.StripSealed(stored)
	for _, v := range personalValues {
		require.NotContains(t, rest, v)
	}
}

func registerAda(t *testing.T, repo *repository.Customers, id gocql.UUID) {
	t.Helper()
	ctx := context.Background()
	_, err := repo.Handle(ctx, id, customer.RegisterCustomer{CustomerID: id.String(), Name: "Ada Lovelace",
		Email: must(value.NewEmail("ada@example.org")), Phone: must(value.NewPhoneNumber("+44 20 7946 0958"))}, meta())
	require.NoError(t, err)
	_, err = repo.Handle(ctx, id, customer.AddAddress{AddressID: uuid.NewString(), Address: must(value.NewAddress(value.AddressFields{
		Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}))}, meta())
	require.NoError(t, err)
}

func deliveredOrder(t *testing.T, repo *repository.Orders, customerID gocql.UUID, signature string) (gocql.UUID, error) {
	t.Helper()
	ctx := context.Background()
	id := gocql.UUID(uuid.New())
	for _, cmd := range []order.Command{
		order.CreateOrder{OrderID: id.String(), CustomerID: customerID.String(), Items: items()},
		order.ConfirmOrder{}, order.ShipOrder{Carrier: "DHL", TrackingNumber: "1Z"},
	} {
		if _, err := repo.Handle(ctx, id, cmd, meta()); err != nil {
			return id, err
		}
	}
	_, err := repo.Handle(ctx, id, order.Command(order.DeliverOrder{Signature: signature}), meta())
	return id, err
}

// Events and snapshots hold personal values sealed only; the repositories
// read them in clear, through snapshots too.
func TestSealingKeepsPersonalDataOutOfTheStore(t *testing.T) {
	ctx := context.Background()
	w := newSealedWorld(t, 2)
	cust := gocql.UUID(uuid.New())
	registerAda(t, w.customers, cust)
	orderID, err := deliveredOrder(t, w.orders, cust, "Ada L. signed")
	require.NoError(t, err)

	for _, id := range []gocql.UUID{cust, orderID} {
		stored := w.stored(t, id)
		require.Contains(t, stored, personal.TextPrefix)
		requireNoClearPersonalData(t, stored)
		snap, ok, err := w.mem.LatestSnapshot(ctx, id, 0)
		require.NoError(t, err)
		require.True(t, ok, "snapshot_every 2 wrote one")
		require.True(t, personal.IsSealed(string(snap.State)), "the snapshot is sealed whole")
	}

	c, version, err := w.customers.Load(ctx, cust)
	require.NoError(t, err)
	require.Equal(t, int64(2), version)
	require.Equal(t, "Ada Lovelace", c.Name)
	require.Equal(t, "ada@example.org", c.Email.String())
	require.Equal(t, "+442079460958", c.Phone.String())
	require.Equal(t, "London", c.Addresses[0].Address.City())
	o, _, err := w.orders.Load(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, "Ada L. signed", o.Signature)
	require.Equal(t, value.OrderStatusDelivered, o.Status)

	// A retried command decides on the opened state: nothing new.
	res, err := w.customers.Handle(ctx, cust, customer.UpdateProfile{Name: "Ada Lovelace"}, meta())
	require.NoError(t, err)
	require.Empty(t, res.Events)
}

// After a forget: the customer loads redacted and refuses commands, the
// order's history is intact with its signature redacted, a later
// delivery's signature is stored redacted, and snapshots of the forgotten
// customer are neither read nor written.
func TestSealingAfterAForget(t *testing.T) {
	ctx := context.Background()
	w := newSealedWorld(t, 2)
	cust := gocql.UUID(uuid.New())
	registerAda(t, w.customers, cust)
	delivered, err := deliveredOrder(t, w.orders, cust, "Ada L. signed")
	require.NoError(t, err)
	open := gocql.UUID(uuid.New())
	for _, cmd := range []order.Command{
		order.CreateOrder{OrderID: open.String(), CustomerID: cust.String(), Items: items()},
		order.ConfirmOrder{}, order.ShipOrder{Carrier: "DHL", TrackingNumber: "2Z"},
	} {
		_, err := w.orders.Handle(ctx, open, cmd, meta())
		require.NoError(t, err)
	}

	res, err := w.customers.Handle(ctx, cust, customer.ForgetCustomer{}, meta())
	require.NoError(t, err)
	require.Equal(t, []customer.Event{customer.CustomerForgotten{}}, res.Events)
	require.NoError(t, w.keys.Forget(ctx, cust.String()))

	c, version, err := w.customers.Load(ctx, cust)
	require.NoError(t, err)
	require.Equal(t, customer.State{ID: cust.String(), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive,
		Forgotten: true, Version: 3}, c)
	require.Equal(t, int64(3), version)
	_, err = w.customers.Handle(ctx, cust, customer.UpdateProfile{Name: "Ada"}, meta())
	require.True(t, customer.IsForgotten(err), "%v", err)
	res, err = w.customers.Handle(ctx, cust, customer.ForgetCustomer{}, meta())
	require.NoError(t, err, "a repeated forget is a no-op")
	require.Empty(t, res.Events)

	o, _, err := w.orders.Load(ctx, delivered)
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.Signature)
	require.Equal(t, value.OrderStatusDelivered, o.Status)
	require.Len(t, o.Items, 1)

	_, err = w.orders.Handle(ctx, open, order.DeliverOrder{Signature: "Ada L. signed"}, meta())
	require.NoError(t, err, "the order's lifecycle goes on")
	o, version, err = w.orders.Load(ctx, open)
	require.NoError(t, err)
	require.Equal(t, int64(4), version)
	require.Equal(t, personal.Redacted, o.Signature)
	require.NotContains(t, w.stored(t, open), "Ada L. signed")
	require.Contains(t, w.stored(t, open), `"signature":"[redacted]"`)
}

// Events and snapshots written before personal data was switched on are
// clear and still load; the customer's later events are sealed.
func TestSealingReadsClearHistory(t *testing.T) {
	ctx := context.Background()
	w := newSealedWorld(t, 2)
	cust := gocql.UUID(uuid.New())
	registerAda(t, w.clearCustomers, cust)
	require.Contains(t, w.stored(t, cust), "Ada Lovelace")
	orderID, err := deliveredOrder(t, w.clearOrders, cust, "Ada L. signed")
	require.NoError(t, err)

	c, _, err := w.customers.Load(ctx, cust)
	require.NoError(t, err)
	require.Equal(t, "Ada Lovelace", c.Name)
	o, _, err := w.orders.Load(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, "Ada L. signed", o.Signature)

	_, err = w.customers.Handle(ctx, cust, customer.ChangeEmail{Email: must(value.NewEmail("ada.king@example.org"))}, meta())
	require.NoError(t, err)
	var last eventstore.Event
	require.NoError(t, w.mem.Events(ctx, cust, 2, 0, func(e eventstore.Event) error { last = e; return nil }))
	require.NotContains(t, string(last.Data), "ada.king")
	c, _, err = w.customers.Load(ctx, cust)
	require.NoError(t, err)
	require.Equal(t, "ada.king@example.org", c.Email.String())

	// Forgotten, the clear history reads redacted too.
	_, err = w.customers.Handle(ctx, cust, customer.ForgetCustomer{}, meta())
	require.NoError(t, err)
	require.NoError(t, w.keys.Forget(ctx, cust.String()))
	o, _, err = w.orders.Load(ctx, orderID)
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.Signature)
}

// The sealing store counts what it seals and opens through the keyring's
// metrics.
func TestSealingCountsThroughTheKeyring(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := eventstore.DefaultConfig()
	mem, err := memstore.New(cfg)
	require.NoError(t, err)
	wrapper, err := personal.NewFileWrapper(bytes.Repeat([]byte{7}, personal.KeySize))
	require.NoError(t, err)
	pc := personal.DefaultConfig()
	pc.KEKFile = "unused"
	keys, err := personal.NewKeyring(pc, personal.NewMemStore(), wrapper, zerolog.Nop(), reg)
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	sealing, err := repository.NewSealing(mem, keys, up, 10, zerolog.Nop())
	require.NoError(t, err)
	customers := must(repository.NewCustomers(sealing, up, eventstore.RepositoryConfig{}, zerolog.Nop(), nil))
	cust := gocql.UUID(uuid.New())
	registerAda(t, customers, cust)
	n, err := testutil.GatherAndCount(reg, "orderstream_personal_keys_created_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "orderstream_personal_keys_created_total" {
			require.Equal(t, 1.0, f.GetMetric()[0].GetCounter().GetValue())
		}
	}
}

// extraStore is what the event store contract needs beyond a
// RepositoryStore, which Sealing does not touch.
type extraStore interface {
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
	Head(ctx context.Context, id gocql.UUID) (eventstore.Head, error)
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
	Heads(ctx context.Context, fn func(eventstore.Head) error) error
	CheckRecent(ctx context.Context) error
	RecentHeads(ctx context.Context, since time.Time, fn func(eventstore.Head) error) error
	MarkPublished(ctx context.Context, id gocql.UUID, seq int64) error
	Unpublished(ctx context.Context) (int64, error)
}

type sealedContractStore struct {
	*repository.Sealing
	extraStore
}

// Sealing keeps the event store's contract for aggregates that hold no
// personal data (the suite's own aggregate type): it passes them through.
func TestSealingKeepsTheStoreContract(t *testing.T) {
	eventstoretest.Suite(t, func(t *testing.T, mutate func(*eventstore.Config)) eventstoretest.Store {
		cfg := eventstore.DefaultConfig()
		if mutate != nil {
			mutate(&cfg)
		}
		mem, err := memstore.New(cfg)
		require.NoError(t, err)
		w, err := personal.NewFileWrapper(bytes.Repeat([]byte{7}, personal.KeySize))
		require.NoError(t, err)
		pc := personal.DefaultConfig()
		pc.KEKFile = "unused"
		keys, err := personal.NewKeyring(pc, personal.NewMemStore(), w, zerolog.Nop(), nil)
		require.NoError(t, err)
		sealing, err := repository.NewSealing(mem, keys, eventcodec.NewUpcasters(), 10, zerolog.Nop())
		require.NoError(t, err)
		return sealedContractStore{Sealing: sealing, extraStore: mem}
	})
}
