package httpload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"

	"github.com/google/uuid"
)

// Kinds of valid commands, as the report names them.
const (
	KindRegister   = "register"
	KindAddAddress = "add-address"
	KindCreate     = "create"
	KindConfirm    = "confirm"
	KindShip       = "ship"
	KindDeliver    = "deliver"
	KindCancel     = "cancel"
)

// invalidPrefix marks the kinds of commands the API must refuse.
const invalidPrefix = "invalid:"

// Kinds of invalid commands, and the status each must be refused with.
var invalidKinds = []struct {
	kind   string
	status int
}{
	{invalidPrefix + "ship-created", http.StatusConflict},      // ship an order not yet confirmed
	{invalidPrefix + "confirm-cancelled", http.StatusConflict}, // confirm a cancelled order
	{invalidPrefix + "cancel-delivered", http.StatusConflict},  // cancel a delivered order
	{invalidPrefix + "malformed-body", http.StatusBadRequest},  // JSON cut short
	{invalidPrefix + "no-items", http.StatusUnprocessableEntity},
	{invalidPrefix + "unknown-customer", http.StatusUnprocessableEntity}, // an order for nobody
	{invalidPrefix + "unknown-order", http.StatusNotFound},
}

// Aggregate types, as event_store names them.
const (
	TypeOrder    = "order"
	TypeCustomer = "customer"
)

const (
	openOrders   = 4  // orders a client keeps in flight at once
	maxAddresses = 10 // per customer; the domain allows 20
)

// Order statuses the model tracks.
const (
	statusCreated = iota
	statusConfirmed
	statusShipped
	statusDelivered
	statusCancelled
)

// step is one command, ready to send, and what it should do to the
// client's model when it is carried out.
type step struct {
	kind    string
	method  string
	path    string
	body    []byte
	aggType string
	aggID   string
	// expect is the status an invalid command must be refused with; zero
	// for a valid command, which must answer 2xx.
	expect int
	// apply updates the model with the version the API answered.
	apply func(version int64)
	// forget drops the aggregate from the model when a valid command's
	// outcome is unknown or unexpected, so that one failure does not
	// cascade into the commands that would follow it.
	forget func()
}

type customerModel struct {
	id        string
	version   int64
	addresses int
}

type orderModel struct {
	id       string
	customer string
	status   int
	version  int64
}

// model is what one client knows of its own aggregates.
type model struct {
	rng       *rand.Rand
	customers []*customerModel
	open      []*orderModel // created, confirmed or shipped
	delivered *orderModel   // the latest delivered order
	cancelled *orderModel   // the latest cancelled order
	invalidN  int           // rotates through invalidKinds
}

func newModel(seed uint64, client int) *model {
	// Clients start the rotation of invalid kinds at different kinds, so
	// that short runs with many clients still send every kind.
	return &model{rng: rand.New(rand.NewPCG(seed, uint64(client))), invalidN: client}
}

// next returns the client's next command: a valid one that follows its
// aggregates' lifecycles, or an invalid one when invalid is set.
func (m *model) next(invalid bool) step {
	if invalid {
		return m.invalid()
	}
	r := m.rng.IntN(100)
	switch {
	case len(m.customers) == 0 || r < 6:
		return m.register()
	case r < 14:
		if c := m.addressable(); c != nil {
			return m.addAddress(c)
		}
		return m.register()
	case len(m.open) < openOrders:
		return m.create()
	}
	o := m.open[m.rng.IntN(len(m.open))]
	p := m.rng.IntN(100)
	switch o.status {
	case statusCreated:
		if p < 92 {
			return m.transition(o, KindConfirm, nil, statusConfirmed)
		}
	case statusConfirmed:
		if p < 92 {
			return m.transition(o, KindShip, map[string]any{"carrier": "DHL", "tracking_number": fmt.Sprintf("JD%08d", m.rng.IntN(1e8))}, statusShipped)
		}
	case statusShipped:
		if p < 96 {
			return m.transition(o, KindDeliver, map[string]any{"signature": "J. Doe"}, statusDelivered)
		}
	}
	return m.transition(o, KindCancel, map[string]any{"reason": "changed my mind", "cancelled_by": "customer"}, statusCancelled)
}

func (m *model) register() step {
	c := &customerModel{id: uuid.NewString()}
	return step{
		kind: KindRegister, method: http.MethodPost, path: "/v1/customers",
		body: mustJSON(map[string]any{
			"customer_id": c.id,
			"name":        fmt.Sprintf("Customer %d", m.rng.IntN(1e6)),
			"email":       "c-" + c.id[:8] + "@example.org",
			"phone":       fmt.Sprintf("+4930%07d", m.rng.IntN(1e7)),
		}),
		aggType: TypeCustomer, aggID: c.id,
		apply:  func(v int64) { c.version = v; m.customers = append(m.customers, c) },
		forget: func() {},
	}
}

// addressable picks a customer who may take another address.
func (m *model) addressable() *customerModel {
	c := m.customers[m.rng.IntN(len(m.customers))]
	if c.addresses >= maxAddresses {
		return nil
	}
	return c
}

func (m *model) addAddress(c *customerModel) step {
	return step{
		kind: KindAddAddress, method: http.MethodPost, path: "/v1/customers/" + c.id + "/addresses",
		body: mustJSON(map[string]any{
			"address_id":  uuid.NewString(),
			"label":       "home",
			"line1":       fmt.Sprintf("%d Main St", 1+m.rng.IntN(999)),
			"city":        "Berlin",
			"postal_code": "10115",
			"country":     "DE",
		}),
		aggType: TypeCustomer, aggID: c.id,
		apply:  func(v int64) { c.version = v; c.addresses++ },
		forget: func() { m.customers = remove(m.customers, c) },
	}
}

// items are one to three items of distinct products (the domain refuses
// a product twice).
func (m *model) items() []any {
	out := make([]any, 1+m.rng.IntN(3))
	first := m.rng.IntN(500)
	for i := range out {
		out[i] = map[string]any{
			"product_id": fmt.Sprintf("sku-%d", (first+7*i)%500),
			"quantity":   1 + m.rng.IntN(5),
			"unit_price": map[string]any{"amount_minor": 100 + m.rng.IntN(10_000), "currency": "EUR"},
		}
	}
	return out
}

func (m *model) create() step {
	// The order id is the client's, so that a retry after a crash between
	// commit and answer finds the commit; a server-assigned id would be a
	// new one on every attempt.
	o := &orderModel{id: uuid.NewString(), customer: m.customers[m.rng.IntN(len(m.customers))].id}
	return step{
		kind: KindCreate, method: http.MethodPost, path: "/v1/orders",
		body:    mustJSON(map[string]any{"order_id": o.id, "customer_id": o.customer, "items": m.items()}),
		aggType: TypeOrder, aggID: o.id,
		apply:  func(v int64) { o.version = v; m.open = append(m.open, o) },
		forget: func() {},
	}
}

func (m *model) transition(o *orderModel, kind string, body map[string]any, to int) step {
	s := step{
		kind: kind, method: http.MethodPost, path: "/v1/orders/" + o.id + "/" + kind,
		aggType: TypeOrder, aggID: o.id,
		apply: func(v int64) {
			o.version, o.status = v, to
			switch to {
			case statusDelivered:
				m.open, m.delivered = remove(m.open, o), o
			case statusCancelled:
				m.open, m.cancelled = remove(m.open, o), o
			}
		},
		forget: func() { m.open = remove(m.open, o) },
	}
	if body != nil {
		s.body = mustJSON(body)
	}
	return s
}

// invalid returns the next invalid command in rotation whose precondition
// the model meets (an order in the state it needs, a customer); the last
// kinds need nothing, so there always is one.
func (m *model) invalid() step {
	for range len(invalidKinds) {
		k := invalidKinds[m.invalidN%len(invalidKinds)]
		m.invalidN++
		// An invalid command changes nothing in the model, whatever its
		// outcome, so apply and forget do nothing (but must exist: a
		// cancelled run forgets the step it was sending).
		s := step{kind: k.kind, method: http.MethodPost, expect: k.status, aggType: TypeOrder,
			apply: func(int64) {}, forget: func() {}}
		switch k.kind {
		case invalidPrefix + "ship-created":
			i := slices.IndexFunc(m.open, func(o *orderModel) bool { return o.status == statusCreated })
			if i < 0 {
				continue
			}
			s.path, s.aggID = "/v1/orders/"+m.open[i].id+"/ship", m.open[i].id
			s.body = mustJSON(map[string]any{"carrier": "DHL", "tracking_number": "too-early"})
		case invalidPrefix + "confirm-cancelled":
			if m.cancelled == nil {
				continue
			}
			s.path, s.aggID = "/v1/orders/"+m.cancelled.id+"/confirm", m.cancelled.id
		case invalidPrefix + "cancel-delivered":
			if m.delivered == nil {
				continue
			}
			s.path, s.aggID = "/v1/orders/"+m.delivered.id+"/cancel", m.delivered.id
			s.body = mustJSON(map[string]any{"reason": "too late", "cancelled_by": "customer"})
		case invalidPrefix + "malformed-body":
			id := uuid.NewString()
			s.path, s.aggID, s.body = "/v1/orders", id, []byte(`{"order_id":"`+id+`","customer_id":`)
		case invalidPrefix + "no-items":
			if len(m.customers) == 0 {
				continue
			}
			id := uuid.NewString()
			s.path, s.aggID = "/v1/orders", id
			s.body = mustJSON(map[string]any{"order_id": id, "customer_id": m.customers[0].id, "items": []any{}})
		case invalidPrefix + "unknown-customer":
			id := uuid.NewString()
			s.path, s.aggID = "/v1/orders", id
			s.body = mustJSON(map[string]any{"order_id": id, "customer_id": uuid.NewString(), "items": m.items()})
		case invalidPrefix + "unknown-order":
			id := uuid.NewString()
			s.path, s.aggID = "/v1/orders/"+id+"/confirm", id
		}
		return s
	}
	panic("httpload: no invalid command applies") // unreachable: the last kinds need nothing
}

func remove[T comparable](s []T, v T) []T {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of strings and numbers are marshalled here
	}
	return b
}
