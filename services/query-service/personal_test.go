package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/repository"
)

// keyringOn is a keyring over store with a KEK of its own.
func keyringOn(t *testing.T, store personal.KeyStore, kek []byte) *personal.Keyring {
	t.Helper()
	w, err := personal.NewFileWrapper(kek)
	require.NoError(t, err)
	cfg := personal.DefaultConfig()
	cfg.KEKFile = "(the wrapper is given)" // NewKeyring checks the whole config
	k, err := personal.NewKeyring(cfg, store, w, zerolog.Nop(), nil)
	require.NoError(t, err)
	return k
}

// seal seals m's personal fields as command-service does.
func seal[M proto.Message](t *testing.T, k *personal.Keyring, m M, customerID, aggregateID string) M {
	t.Helper()
	require.NoError(t, k.Seal(context.Background(), m, customerID, aggregateID))
	return m
}

func sealedCustomer(t *testing.T, k *personal.Keyring, id string) customerBody {
	t.Helper()
	reg := seal(t, k, &customerv1.CustomerRegistered{Name: "Ada Lovelace", Email: "ada@example.org", Phone: "+442079460958"}, id, id)
	addr := seal(t, k, &customerv1.CustomerAddressAdded{Address: &customerv1.Address{Label: "home", Line1: "12 St James Sq",
		City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}}, id, id).GetAddress()
	return customerBody{ID: id, Name: reg.GetName(), Email: reg.GetEmail(), Phone: reg.GetPhone(), Tier: "BRONZE", Status: "ACTIVE",
		Addresses: []address{{ID: uuid.NewString(), Label: addr.GetLabel(), Line1: addr.GetLine1(), City: addr.GetCity(),
			PostalCode: addr.GetPostalCode(), Country: addr.GetCountry()}}}
}

func requireUnreadable(t *testing.T, err error) {
	t.Helper()
	var pe *httpapi.ProblemError
	require.True(t, errors.As(err, &pe), "%v", err)
	require.Equal(t, http.StatusInternalServerError, pe.Problem.Status)
	require.Equal(t, "personal.unreadable", pe.Problem.Code)
}

func TestPersonalDataOpensAnswers(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	kek := personal.NewRandomKeyBytes()
	writer := keyringOn(t, store, kek)
	reader := personalData{open: keyringOn(t, store, kek), logger: zerolog.Nop()}
	id, orderID := uuid.NewString(), uuid.NewString()
	sealed := sealedCustomer(t, writer, id)
	require.True(t, personal.IsSealed(sealed.Name) && personal.IsSealed(sealed.Addresses[0].Line1))
	signature := seal(t, writer, &orderv1.OrderDelivered{Signature: "A. Lovelace"}, id, orderID).GetSignature()

	got, err := reader.customerBody(ctx, sealed)
	require.NoError(t, err)
	c := got.(customerBody)
	require.Equal(t, "Ada Lovelace", c.Name)
	require.Equal(t, "ada@example.org", c.Email)
	require.Equal(t, "+442079460958", c.Phone)
	require.Equal(t, address{ID: sealed.Addresses[0].ID, Label: "home", Line1: "12 St James Sq", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}, c.Addresses[0])
	require.True(t, personal.IsSealed(sealed.Addresses[0].Line1), "the read body is not changed in place")

	o, err := reader.orderBody(ctx, orderBody{ID: orderID, CustomerID: id, DeliverySignature: signature})
	require.NoError(t, err)
	require.Equal(t, "A. Lovelace", o.(orderBody).DeliverySignature)

	// Clear values (stored before encryption) answer as they are.
	plain := customerBody{ID: uuid.NewString(), Name: "Old Customer", Email: "old@example.org"}
	got, err = reader.customerBody(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, plain, got)

	// A ciphertext moved to another order does not open: 500, not the
	// value and not a redaction.
	_, err = reader.orderBody(ctx, orderBody{ID: uuid.NewString(), CustomerID: id, DeliverySignature: signature})
	requireUnreadable(t, err)
	// Nor an altered one.
	tampered := sealed
	tampered.Email = sealed.Email[:len(sealed.Email)-2] + flip(sealed.Email[len(sealed.Email)-2:])
	_, err = reader.customerBody(ctx, tampered)
	requireUnreadable(t, err)
	// Nor under another KEK.
	other := personalData{open: keyringOn(t, store, personal.NewRandomKeyBytes()), logger: zerolog.Nop()}
	_, err = other.customerBody(ctx, sealed)
	requireUnreadable(t, err)

	// Forgotten: every personal field reads the marker; 200, not an error.
	require.NoError(t, writer.Forget(ctx, id))
	forgetting := personalData{open: keyringOn(t, store, kek), logger: zerolog.Nop()} // another process, nothing cached
	got, err = forgetting.customerBody(ctx, sealed)
	require.NoError(t, err)
	c = got.(customerBody)
	require.Equal(t, []string{personal.Redacted, personal.Redacted, personal.Redacted}, []string{c.Name, c.Email, c.Phone})
	require.Equal(t, address{ID: sealed.Addresses[0].ID, Label: personal.Redacted, Line1: personal.Redacted, City: personal.Redacted,
		PostalCode: personal.Redacted, Country: personal.Redacted}, c.Addresses[0])
	require.Equal(t, "BRONZE", c.Tier)
	o, err = forgetting.orderBody(ctx, orderBody{ID: orderID, CustomerID: id, DeliverySignature: signature})
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.(orderBody).DeliverySignature)
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// Without keys (personal.enabled=false) sealed values answer the marker,
// clear ones as they are.
func TestPersonalDataOffRedactsSealedValues(t *testing.T) {
	ctx := context.Background()
	k := keyringOn(t, personal.NewMemStore(), personal.NewRandomKeyBytes())
	id := uuid.NewString()
	sealed := sealedCustomer(t, k, id)
	off := personalData{open: sealedRedactor{}, logger: zerolog.Nop()}
	got, err := off.customerBody(ctx, sealed)
	require.NoError(t, err)
	c := got.(customerBody)
	require.Equal(t, personal.Redacted, c.Name)
	require.Equal(t, personal.Redacted, c.Addresses[0].City)

	plain := customerBody{ID: id, Name: "Old Customer", Email: "old@example.org", Addresses: []address{{ID: "a", Line1: "1 Main St"}}}
	got, err = off.customerBody(ctx, plain)
	require.NoError(t, err)
	require.Equal(t, plain, got)

	o, err := off.orderBody(ctx, orderBody{ID: uuid.NewString(), CustomerID: id, DeliverySignature: "pd:AQIDBAUG"})
	require.NoError(t, err)
	require.Equal(t, personal.Redacted, o.(orderBody).DeliverySignature)
}

// A history's payloads are opened in the layout they were stored in; a
// payload without personal data is left byte for byte.
func TestPersonalDataOpensEventPayloads(t *testing.T) {
	ctx := context.Background()
	store := personal.NewMemStore()
	kek := personal.NewRandomKeyBytes()
	writer := keyringOn(t, store, kek)
	reader := personalData{open: keyringOn(t, store, kek), logger: zerolog.Nop()}
	id := gocql.MustRandomUUID()
	stored := func(typ string, version int32, m proto.Message) eventstore.Event {
		data, err := protojson.Marshal(m)
		require.NoError(t, err)
		return eventstore.Event{AggregateID: id, AggregateType: customer.AggregateType, Type: typ, Version: version, Data: data}
	}
	self := func(context.Context) (string, error) { return id.String(), nil }

	e := stored(customer.EventCustomerRegistered, 2, seal(t, writer, &customerv1.CustomerRegistered{CustomerId: id.String(), Name: "Ada Lovelace",
		Email: "ada@example.org", Tier: customerv1.CustomerTier_CUSTOMER_TIER_BRONZE}, id.String(), id.String()))
	require.NotContains(t, string(e.Data), "Ada")
	sealedRegistered := e
	require.NoError(t, reader.event(ctx, customer.AggregateType, &e, self))
	require.Contains(t, string(e.Data), `"name":"Ada Lovelace"`)
	require.Contains(t, strings.ReplaceAll(string(e.Data), " ", ""), `"tier":"CUSTOMER_TIER_BRONZE"`, "the rest of the payload stays")

	// Version 1 of CustomerRegistered (clear, before encryption).
	v1 := stored(customer.EventCustomerRegistered, 1, &customerv1.CustomerRegisteredV1{CustomerId: id.String(), FullName: "Ada King", Email: "ada@example.org"})
	before := string(v1.Data)
	require.NoError(t, reader.event(ctx, customer.AggregateType, &v1, self))
	require.Equal(t, before, string(v1.Data), "clear values are answered byte for byte")

	noPersonal := stored(customer.EventCustomerSuspended, 1, &customerv1.CustomerSuspended{Reason: "pd:looks-sealed-but-is-not-personal"})
	before = string(noPersonal.Data)
	asked := false
	require.NoError(t, reader.event(ctx, customer.AggregateType, &noPersonal, func(context.Context) (string, error) { asked = true; return "", nil }))
	require.Equal(t, before, string(noPersonal.Data))
	require.False(t, asked, "an event type without personal fields needs no owner")

	broken := eventstore.Event{AggregateID: id, AggregateType: customer.AggregateType, Type: customer.EventCustomerEmailChanged, Version: 1, Data: []byte(`{"email": 7}`)}
	require.NoError(t, reader.event(ctx, customer.AggregateType, &broken, self))
	require.Equal(t, `"[redacted]"`, string(broken.Data), "what cannot be decoded cannot be told safe")

	// An order's signature, under its customer's key.
	orderID := gocql.MustRandomUUID()
	delivered := stored(order.EventOrderDelivered, 1, seal(t, writer, &orderv1.OrderDelivered{Signature: "A. Lovelace"}, id.String(), orderID.String()))
	delivered.AggregateID, delivered.AggregateType = orderID, order.AggregateType
	require.NoError(t, reader.event(ctx, order.AggregateType, &delivered, self))
	require.Contains(t, string(delivered.Data), "A. Lovelace")

	// Forgotten: sealed and clear alike read the marker.
	require.NoError(t, writer.Forget(ctx, id.String()))
	fresh := personalData{open: keyringOn(t, store, kek), logger: zerolog.Nop()}
	for _, ev := range []eventstore.Event{sealedRegistered, v1} {
		require.NoError(t, fresh.event(ctx, customer.AggregateType, &ev, self))
		require.NotContains(t, string(ev.Data), "Ada")
		require.NotContains(t, string(ev.Data), "ada@example.org")
		require.Contains(t, string(ev.Data), personal.Redacted)
	}
}

// Over HTTP on the real stack: events sealed as command-service stores
// them are answered opened by every read path; after the customer is
// forgotten, as the marker (200s); under another KEK, a 500
// personal.unreadable; without keys, the marker.
func TestPersonalDataOverHTTP(t *testing.T) {
	kekFile := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(kekFile, personal.NewRandomKeyBytes(), 0o600))
	e := newEnv(t, func(c *Config) {
		c.Personal.Enabled, c.Personal.KEKFile = true, kekFile
		c.Personal.CacheTTL = time.Millisecond // a forget shows at once
	})
	// The write model seals, as command-service does, with the same KEK.
	kek, err := personal.ReadKEKFile(kekFile)
	require.NoError(t, err)
	keys := keyringOn(t, personal.NewCQLStore(e.session), kek)
	up := eventcodec.NewUpcasters()
	sealing, err := repository.NewSealing(e.store, keys, up, 100, zerolog.Nop())
	require.NoError(t, err)
	e.orders, err = repository.NewOrders(sealing, up, eventstore.RepositoryConfig{MaxConflictRetries: 5}, zerolog.Nop(), nil)
	require.NoError(t, err)
	e.customers, err = repository.NewCustomers(sealing, up, eventstore.RepositoryConfig{MaxConflictRetries: 5}, zerolog.Nop(), nil)
	require.NoError(t, err)

	c := e.registerCustomer()
	handleCustomer := func(cmd customer.Command) {
		_, err := e.customers.Handle(context.Background(), c, cmd, meta())
		require.NoError(t, err)
	}
	home, err := value.NewAddress(value.AddressFields{Label: "home", Line1: "12 St James Sq", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"})
	require.NoError(t, err)
	handleCustomer(customer.Command(customer.AddAddress{AddressID: uuid.NewString(), Address: home}))
	o := e.createOrder(c)
	e.handleOrder(o, order.ConfirmOrder{})
	e.handleOrder(o, order.ShipOrder{Carrier: "DHL", TrackingNumber: "T1"})
	e.handleOrder(o, order.DeliverOrder{Signature: "Ada Lovelace"})
	e.projectCustomer(c)
	e.projectOrder(o, 4)
	raw, found, err := readmodel.ReadCustomer(context.Background(), e.session, c)
	require.NoError(t, err)
	require.True(t, found)
	require.True(t, personal.IsSealed(raw.Name), "the row holds the ciphertext: %q", raw.Name)

	cu := e.ok(e.get("/v1/customers/" + c.String()))
	require.Equal(t, "Ada Lovelace", cu["name"])
	require.Contains(t, cu["email"], "@example.org")
	require.Equal(t, "12 St James Sq", cu["addresses"].([]any)[0].(map[string]any)["line1"])
	require.Equal(t, "Ada Lovelace", e.ok(e.get("/v1/orders/" + o.String()))["delivery_signature"])
	require.Equal(t, "Ada Lovelace", e.ok(e.get("/v1/orders/" + o.String() + "?at_version=4"))["delivery_signature"])
	require.Equal(t, "London", e.ok(e.get("/v1/customers/" + c.String() + "?at_version=2"))["addresses"].([]any)[0].(map[string]any)["city"])
	hist := e.get("/v1/orders/" + o.String() + "/events?after_sequence=2")
	e.ok(hist)
	require.Contains(t, hist.Raw, "Ada Lovelace", "a page without the OrderCreated still finds the order's customer")
	hist = e.get("/v1/customers/" + c.String() + "/events")
	e.ok(hist)
	require.Contains(t, hist.Raw, "12 St James Sq")
	require.NotContains(t, hist.Raw, personal.TextPrefix)

	// Another KEK (a misconfigured replica): 500 personal.unreadable.
	otherKEK := filepath.Join(t.TempDir(), "other")
	require.NoError(t, os.WriteFile(otherKEK, personal.NewRandomKeyBytes(), 0o600))
	wrong := *e.cfg
	wrong.Personal.KEKFile = otherKEK
	h, err := newHandler(e.session, &wrong, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider())
	require.NoError(t, err)
	for _, path := range []string{"/v1/customers/" + c.String(), "/v1/orders/" + o.String(), "/v1/customers/" + c.String() + "/events"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusInternalServerError, rec.Code, "%s: %s", path, rec.Body)
		require.Contains(t, rec.Body.String(), `"code":"personal.unreadable"`)
		require.NotContains(t, rec.Body.String(), "Ada")
	}
	// Without keys: the marker.
	off := *e.cfg
	off.Personal = PersonalConfig{Config: personal.DefaultConfig()}
	h, err = newHandler(e.session, &off, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider())
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/customers/"+c.String(), nil))
	require.Equal(t, http.StatusOK, rec.Code, "%s", rec.Body)
	require.Contains(t, rec.Body.String(), `"name":"[redacted]"`)
	require.NotContains(t, rec.Body.String(), personal.TextPrefix)

	// Forget: the event, then the key, as command-service does.
	handleCustomer(customer.Command(customer.ForgetCustomer{}))
	require.NoError(t, keys.Forget(context.Background(), c.String()))
	// Before the view has caught up, its sealed row reads redacted.
	cu = e.ok(e.get("/v1/customers/" + c.String()))
	require.Equal(t, personal.Redacted, cu["name"])
	require.Equal(t, personal.Redacted, cu["addresses"].([]any)[0].(map[string]any)["line1"])
	e.projectCustomer(c)
	cu = e.ok(e.get("/v1/customers/" + c.String()))
	require.Equal(t, []any{personal.Redacted, personal.Redacted}, []any{cu["name"], cu["email"]})
	require.Empty(t, cu["addresses"])
	require.EqualValues(t, 3, cu["version"])
	require.Equal(t, personal.Redacted, e.ok(e.get("/v1/orders/" + o.String()))["delivery_signature"])
	require.Equal(t, "DELIVERED", e.ok(e.get("/v1/orders/" + o.String()))["status"])
	require.Equal(t, personal.Redacted, e.ok(e.get("/v1/customers/" + c.String() + "?at_version=2"))["name"])
	for _, path := range []string{"/v1/customers/" + c.String() + "/events", "/v1/orders/" + o.String() + "/events"} {
		a := e.get(path)
		e.ok(a)
		require.NotContains(t, a.Raw, "Ada")
		require.NotContains(t, a.Raw, "St James")
		require.Contains(t, a.Raw, personal.Redacted)
	}
}

// countingStore counts the reads of customer_keys.
type countingStore struct {
	personal.KeyStore
	gets int
}

func (s *countingStore) Get(ctx context.Context, customerID string) (personal.Record, error) {
	s.gets++
	return s.KeyStore.Get(ctx, customerID)
}

// Customers without a data key (registered before encryption) are
// remembered for cache_ttl, so that their clear answers do not read
// customer_keys each time; sealed values always go to the keyring.
func TestKeylessCache(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{KeyStore: personal.NewMemStore()}
	kek := personal.NewRandomKeyBytes()
	writer := keyringOn(t, store, kek)
	cfg := personal.DefaultConfig()
	c, err := newKeylessCache(keyringOn(t, store, kek), cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	now := time.Now()
	c.now = func() time.Time { return now }
	open := func(customerID string, m proto.Message) personal.Outcome {
		t.Helper()
		o, err := c.Open(ctx, m, customerID, customerID)
		require.NoError(t, err)
		return o
	}

	legacy := uuid.NewString()
	clearMsg := func() *customerv1.CustomerRegistered {
		return &customerv1.CustomerRegistered{Name: "Old Customer", Email: "old@example.org"}
	}
	require.Equal(t, personal.Outcome{Plain: 2}, open(legacy, clearMsg()))
	require.Equal(t, 1, store.gets)
	require.Equal(t, personal.Outcome{Plain: 2}, open(legacy, clearMsg()))
	require.Equal(t, 1, store.gets, "a keyless customer is remembered")
	now = now.Add(cfg.CacheTTL + time.Second)
	open(legacy, clearMsg())
	require.Equal(t, 2, store.gets, "for cache_ttl only")

	// A value sealed since (the customer's first command after the
	// switch) goes to the keyring, cache or not.
	m := seal(t, writer, clearMsg(), legacy, legacy)
	require.Equal(t, personal.Outcome{Opened: 2}, open(legacy, m))
	require.Equal(t, "Old Customer", m.GetName())

	// Forgotten: the keyring knows (and caches) it; clear values redact.
	other := uuid.NewString()
	require.NoError(t, writer.Forget(ctx, other))
	gets := store.gets
	m = clearMsg()
	require.Equal(t, personal.Outcome{Redacted: 2}, open(other, m))
	require.Equal(t, personal.Redacted, m.GetName())
	open(other, clearMsg())
	require.Equal(t, gets+1, store.gets, "the keyring caches a forgotten customer")

	// Nothing personal: nothing asked.
	gets = store.gets
	require.Equal(t, personal.Outcome{}, open(uuid.NewString(), &customerv1.CustomerRegistered{}))
	require.Equal(t, gets, store.gets)
}

// With personal data on, a KEK is required: the service does not start
// without one (the error names the key); off, none is needed.
func TestPersonalConfigNeedsAKEK(t *testing.T) {
	c := defaultConfig()
	require.NoError(t, c.Validate(), "off by default: no KEK needed")
	c.Personal.Enabled = true
	require.ErrorContains(t, c.Validate(), `"personal.kek_file"`)
	c.Personal.KEKFile = filepath.Join(t.TempDir(), "missing")
	require.NoError(t, c.Validate())
	_, err := newOpener(nil, c.Personal, zerolog.Nop(), nil)
	require.ErrorContains(t, err, `"personal.kek_file"`)
	short := filepath.Join(t.TempDir(), "short")
	require.NoError(t, os.WriteFile(short, []byte("too short"), 0o600))
	c.Personal.KEKFile = short
	_, err = newOpener(nil, c.Personal, zerolog.Nop(), nil)
	require.ErrorContains(t, err, `"personal.kek_file"`)
}
