package readmodel_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
)

var (
	orderID    = gocql.MustRandomUUID()
	customerID = gocql.MustRandomUUID()
	homeID     = gocql.MustRandomUUID()
	workID     = gocql.MustRandomUUID()
	// t0 has sub-millisecond digits, which the rows must drop.
	t0 = time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
)

// at is when the event of sequence seq occurred, as the rows show it.
func at(seq int64) time.Time {
	return time.Date(2025, 3, 1, 12, 0, int(seq), 123_000_000, time.UTC)
}

// stream builds the stored events of one aggregate, one second apart.
type stream struct {
	id  gocql.UUID
	typ string
	seq int64
}

func (s *stream) next(typ string, data []byte) eventstore.Event {
	s.seq++
	return eventstore.Event{
		AggregateID: s.id, AggregateType: s.typ, Sequence: s.seq, EventID: gocql.MustRandomUUID(),
		Type: typ, Version: eventcodec.NewUpcasters().Current(typ), Data: data,
		OccurredAt: t0.Add(time.Duration(s.seq) * time.Second),
	}
}

func orderEvents(t testing.TB, id gocql.UUID, events ...order.Event) []eventstore.Event {
	t.Helper()
	return storedEvents(t, id, order.AggregateType, eventcodec.OrderCodec{}.EncodeEvent, events)
}

func customerEvents(t testing.TB, id gocql.UUID, events ...customer.Event) []eventstore.Event {
	t.Helper()
	return storedEvents(t, id, customer.AggregateType, eventcodec.CustomerCodec{}.EncodeEvent, events)
}

// storedEvents encodes the events of aggregate id, of type typ, as stored
// events.
func storedEvents[E any](t testing.TB, id gocql.UUID, typ string, encode func(E) (string, []byte, error), events []E) []eventstore.Event {
	t.Helper()
	s := &stream{id: id, typ: typ}
	out := make([]eventstore.Event, len(events))
	for i, e := range events {
		typ, data, err := encode(e)
		require.NoError(t, err)
		out[i] = s.next(typ, data)
	}
	return out
}

func item(t testing.TB, productID string, qty, minor int64, code string) value.OrderItem {
	t.Helper()
	price, err := value.NewMoney(minor, currencyOf(t, code))
	require.NoError(t, err)
	it, err := value.NewOrderItem(productID, qty, price)
	require.NoError(t, err)
	return it
}

func address(t testing.TB, label, line1, city string) value.Address {
	t.Helper()
	a, err := value.NewAddress(value.AddressFields{Label: label, Line1: line1, City: city, PostalCode: "10115", Country: "DE"})
	require.NoError(t, err)
	return a
}

func email(t testing.TB, s string) value.Email {
	t.Helper()
	e, err := value.NewEmail(s)
	require.NoError(t, err)
	return e
}

func phone(t testing.TB, s string) value.PhoneNumber {
	t.Helper()
	p, err := value.NewPhoneNumber(s)
	require.NoError(t, err)
	return p
}

func created(t testing.TB) order.OrderCreated {
	return order.OrderCreated{
		OrderID: orderID.String(), CustomerID: customerID.String(),
		Items: []value.OrderItem{item(t, "sku-1", 2, 1250, "EUR")}, Currency: currencyOf(t, "EUR"),
	}
}

func currencyOf(t testing.TB, code string) value.Currency {
	t.Helper()
	c, err := value.NewCurrency(code)
	require.NoError(t, err)
	return c
}

func registered(t testing.TB) customer.CustomerRegistered {
	return customer.CustomerRegistered{
		CustomerID: customerID.String(), Name: "Ada Lovelace", Email: email(t, "ada@example.com"),
		Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive,
	}
}

// fold folds events into s with the view, as the projector does.
func fold[S any](t testing.TB, v projector.View[S], s S, events ...eventstore.Event) S {
	t.Helper()
	for _, e := range events {
		var err error
		s, err = v.Fold(s, e)
		require.NoError(t, err)
	}
	return s
}

// roundTrip stores and loads s the way the projector's checkpoint does.
func roundTrip[S any](t testing.TB, s S) S {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var out S
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// step is one Write of the projector: the events it folds since the last.
type step struct {
	name   string
	events int
	want   []gocql.BatchEntry
}

// runSteps folds events step by step, checkpointing the state as JSON in
// between, and checks the statements each Write adds.
func runSteps[S any](t *testing.T, v projector.View[S], id gocql.UUID, events []eventstore.Event, steps []step) {
	t.Helper()
	var (
		state   S
		existed bool
		n       int
	)
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			s := fold(t, v, state, events[n:n+st.events]...)
			n += st.events
			b := new(gocql.Batch)
			require.NoError(t, v.Write(b, id, state, existed, s, int64(n)))
			require.Equal(t, st.want, b.Entries)
			state, existed = roundTrip(t, s), true
		})
	}
	require.Equal(t, len(events), n, "steps must consume every event")
}

func entry(stmt string, args ...any) gocql.BatchEntry {
	return gocql.BatchEntry{Stmt: stmt, Args: args}
}
