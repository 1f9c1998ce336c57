package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

const forgetToken = "forget-token-0123456789"

// syncBuffer is a log sink the handler's goroutines may write to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// personalEnv is a command-service with personal data on, a KEK of its
// own, snapshots every 2 events and the forget token.
type personalEnv struct {
	*env
	kekFile string
	log     *syncBuffer
}

func writeKEK(t testing.TB) string {
	t.Helper()
	kek := make([]byte, personal.KeySize)
	_, err := rand.Read(kek)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(path, kek, 0o600))
	return path
}

func newPersonalEnv(t *testing.T) personalEnv {
	t.Helper()
	kek := writeKEK(t)
	log := &syncBuffer{}
	e := newEnvLogged(t, noop.NewTracerProvider(), zerolog.New(log), func(c *Config) {
		c.Personal.Enabled = true
		c.Personal.KEKFile = kek
		c.Forget.Token = forgetToken
		c.EventStore.SnapshotEvery = 2
	})
	return personalEnv{env: e, kekFile: kek, log: log}
}

// keyring is a second keyring on the same keys, as another process has.
func (p personalEnv) keyring(t *testing.T) *personal.Keyring {
	t.Helper()
	cfg := personal.DefaultConfig()
	cfg.KEKFile = p.kekFile
	k, err := newKeyring(p.session, cfg, zerolog.Nop(), nil)
	require.NoError(t, err)
	return k
}

// stored is everything event_store holds of an aggregate: its events'
// data and its latest snapshot.
func (p personalEnv) stored(t *testing.T, id string) string {
	t.Helper()
	ctx := context.Background()
	uid, err := gocql.ParseUUID(id)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, p.store.Events(ctx, uid, 0, 0, func(e eventstore.Event) error {
		b.Write(e.Data)
		b.WriteByte('\n')
		return nil
	}))
	snap, ok, err := p.store.LatestSnapshot(ctx, uid, 0)
	require.NoError(t, err)
	if ok {
		b.Write(snap.State)
	}
	return b.String()
}

func (p personalEnv) forget(id string, headers ...string) answer {
	p.t.Helper()
	return p.do("POST", "/v1/customers/"+id+"/forget", nil, append([]string{"Authorization", "Bearer " + forgetToken}, headers...)...)
}

// The whole writer side of issue 20 on the real stack: nothing personal is
// stored in clear (events and snapshots), a forget is authorised, audited
// and idempotent, and afterwards the customer's commands are 410, a new
// order 422, while the customer's existing orders go on.
func TestForgetCustomer(t *testing.T) {
	e := newPersonalEnv(t)
	email := "ada+" + uuid.NewString()[:8] + "@example.org"
	cust := e.ok(e.do("POST", "/v1/customers", map[string]any{"name": "Ada Lovelace", "email": email, "phone": "+44 20 7946 0958"}), 201, 1)
	base := "/v1/customers/" + cust
	e.ok(e.do("POST", base+"/addresses", map[string]any{"label": "home", "line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}), 201, 2)
	e.ok(e.do("PATCH", base+"/profile", map[string]any{"name": "Ada King"}), 200, 3)
	delivered := e.createOrder(cust)
	e.ok(e.do("POST", "/v1/orders/"+delivered+"/confirm", nil), 200, 2)
	e.ok(e.do("POST", "/v1/orders/"+delivered+"/ship", map[string]any{"carrier": "DHL", "tracking_number": "1Z"}), 200, 3)
	e.ok(e.do("POST", "/v1/orders/"+delivered+"/deliver", map[string]any{"signature": "Ada K. signed"}), 200, 4)
	shipped := e.createOrder(cust)
	e.ok(e.do("POST", "/v1/orders/"+shipped+"/confirm", nil), 200, 2)
	e.ok(e.do("POST", "/v1/orders/"+shipped+"/ship", map[string]any{"carrier": "DHL", "tracking_number": "2Z"}), 200, 3)

	clear := []string{"Ada", "Lovelace", "King", email, "7946", "James", "London", "SW1Y", "signed"}
	for _, id := range []string{cust, delivered} {
		stored := e.stored(t, id)
		require.Contains(t, stored, personal.TextPrefix, "sealed values are stored")
		for _, c := range clear {
			require.NotContains(t, personal.StripSealed(stored), c, "stored in clear: %s", stored)
		}
		snap, ok, err := e.store.LatestSnapshot(context.Background(), gocql.UUID(uuid.MustParse(id)), 0)
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, personal.IsSealed(string(snap.State)), "the snapshot is sealed whole")
	}
	// The service decides on the opened values: the same name is a no-op.
	e.ok(e.do("PATCH", base+"/profile", map[string]any{"name": "Ada King"}), 200, 3)

	// Refused without the token, or with another; a refused attempt with an
	// Idempotency-Key does not answer the authorised retry.
	key := uuid.NewString()
	a := e.do("POST", base+"/forget", nil, "Idempotency-Key", key)
	e.problem(a, 401, "unauthorized", "")
	require.NotEmpty(t, a.Header.Get("WWW-Authenticate"))
	e.problem(e.do("POST", base+"/forget", nil, "Authorization", "Bearer wrong-token-0123456789", "Idempotency-Key", key), 403, "forbidden", "")

	a = e.forget(cust, "Idempotency-Key", key, "X-Requested-By", "dpo@example.com", "X-Correlation-ID", "forget-"+cust)
	e.ok(a, 200, 4)
	_, err := e.keyring(t).Lookup(context.Background(), cust)
	require.ErrorIs(t, err, personal.ErrForgotten, "the data key is destroyed")
	var audit, refused map[string]any
	for _, l := range e.log.lines() {
		switch {
		case l["audit"] == "customer.forget" && l["outcome"] == "ok":
			audit = l
		case l["audit"] == "customer.forget" && l["outcome"] == "refused":
			refused = l
		}
	}
	require.NotNil(t, refused, "refused forgets are audited too")
	require.Equal(t, cust, refused["customer_id"])
	require.NotNil(t, audit, "an audit line for the forget")
	require.Equal(t, cust, audit["customer_id"])
	require.Equal(t, "dpo@example.com", audit["requested_by"])
	require.Equal(t, "forget-"+cust, audit["correlation_id"])
	require.NotEmpty(t, audit["at"])

	// Idempotent: the same request replays, a new one answers the same.
	e.ok(e.forget(cust, "Idempotency-Key", key, "X-Requested-By", "dpo@example.com"), 200, 4)
	e.ok(e.forget(cust), 200, 4)

	// The customer is gone for commands; an order for them is refused.
	a = e.do("PATCH", base+"/profile", map[string]any{"name": "Ada"})
	e.problem(a, 410, "customer-forgotten", "")
	require.Equal(t, customer.CodeForgotten, a.Body["code"])
	e.problem(e.do("POST", base+"/suspend", map[string]any{"reason": "x"}), 410, "customer-forgotten", "")
	e.problem(e.do("POST", "/v1/customers", map[string]any{"customer_id": cust, "name": "Ada", "email": "a@example.org"}), 410, "customer-forgotten", "")
	a = e.do("POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{item("sku-1", 1, 100)}})
	e.problem(a, 422, "rule-broken", "customer_id")
	require.Equal(t, "order.customer_forgotten", a.Body["code"])

	// Their orders go on; a signature after the forget is stored redacted.
	e.ok(e.do("POST", "/v1/orders/"+shipped+"/deliver", map[string]any{"signature": "Ada K. signed"}), 200, 4)
	stored := e.stored(t, shipped)
	require.NotContains(t, stored, "signed")
	require.Contains(t, stored, `"signature":"[redacted]"`)
	e.problem(e.do("POST", "/v1/orders/"+delivered+"/cancel", map[string]any{"reason": "late", "cancelled_by": "ops"}), 409, "state-conflict", "")
}

// A forget that died between recording CustomerForgotten and destroying
// the key is finished by a retry.
func TestForgetRetryFinishesAHalfDoneForget(t *testing.T) {
	e := newPersonalEnv(t)
	cust := e.registerCustomer()
	keys := e.keyring(t)
	store, err := eventstore.New(stacktest.Session(t), eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	sealing, err := repository.NewSealing(store, keys, up, 10, zerolog.Nop())
	require.NoError(t, err)
	customers, err := repository.NewCustomers(sealing, up, eventstore.RepositoryConfig{}, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	_, err = customers.Handle(context.Background(), gocql.UUID(uuid.MustParse(cust)), customer.ForgetCustomer{},
		eventstore.Metadata{CommandID: uuid.NewString()})
	require.NoError(t, err)
	_, err = keys.Lookup(context.Background(), cust)
	require.NoError(t, err, "the key is still there: the forget died half-way")
	e.problem(e.do("PATCH", "/v1/customers/"+cust+"/profile", map[string]any{"name": "X"}), 410, "customer-forgotten", "")

	e.ok(e.forget(cust), 200, 2)
	_, err = e.keyring(t).Lookup(context.Background(), cust)
	require.ErrorIs(t, err, personal.ErrForgotten)
	require.GreaterOrEqual(t, counter(t, e.reg, "orderstream_personal_keys_forgotten_total"), 1.0)
	require.GreaterOrEqual(t, counter(t, e.reg, "orderstream_personal_keys_created_total"), 1.0)
}

func TestForgetUnknownCustomerIs404(t *testing.T) {
	e := newPersonalEnv(t)
	e.problem(e.forget(uuid.NewString()), 404, "not-found", "")
	order := e.createOrder(e.registerCustomer())
	e.problem(e.forget(order), 404, "not-found", "")
}

// With personal data off there is no key to destroy: a forget is 501.
func TestForgetNeedsPersonalData(t *testing.T) {
	e := newEnvTraced(t, noop.NewTracerProvider(), func(c *Config) { c.Forget.Token = forgetToken })
	cust := e.registerCustomer()
	e.problem(e.do("POST", "/v1/customers/"+cust+"/forget", nil, "Authorization", "Bearer "+forgetToken), 501, "personal-data-off", "")
	// And without a token configured, 403.
	e = newEnv(t)
	e.problem(e.do("POST", "/v1/customers/"+cust+"/forget", nil, "Authorization", "Bearer "+forgetToken), 403, "forbidden", "")
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}
