package order_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

const (
	orderID    = "0190f0a8-3c1b-7cc2-9d6e-5a4f3b2c1d0e"
	customerID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
)

type errKind int

const (
	noError errKind = iota
	ruleErr
	conflictErr
	notFoundErr
)

// requireErr asserts that err is the domain error of the given kind and
// code, which is what the HTTP layer maps to a status.
func requireErr(t *testing.T, err error, kind errKind, code string) {
	t.Helper()
	require.Error(t, err)
	switch kind {
	case ruleErr:
		var e *domain.RuleError
		require.ErrorAs(t, err, &e)
	case conflictErr:
		var e *domain.ConflictError
		require.ErrorAs(t, err, &e)
	case notFoundErr:
		var e *domain.NotFoundError
		require.ErrorAs(t, err, &e)
	default:
		t.Fatalf("unexpected error: %v", err)
	}
	require.Equal(t, code, domain.CodeOf(err))
}

func currency(t testing.TB, code string) value.Currency {
	t.Helper()
	c, err := value.NewCurrency(code)
	require.NoError(t, err)
	return c
}

func item(t testing.TB, productID string, qty, minor int64, code string) value.OrderItem {
	t.Helper()
	price, err := value.NewMoney(minor, currency(t, code))
	require.NoError(t, err)
	it, err := value.NewOrderItem(productID, qty, price)
	require.NoError(t, err)
	return it
}

func items(its ...value.OrderItem) []value.OrderItem { return its }

// history builds the events of an order that went through the named
// states, so each test starts from a state reached the real way.
type history struct {
	items     []value.OrderItem
	created   []order.Event
	confirmed []order.Event
	shipped   []order.Event
	delivered []order.Event
	cancelled []order.Event
}

func newHistory(t testing.TB) history {
	its := items(item(t, "SKU-1", 2, 999, "USD"), item(t, "SKU-2", 1, 500, "USD"))
	h := history{items: its}
	h.created = []order.Event{order.OrderCreated{OrderID: orderID, CustomerID: customerID, Items: its, Currency: currency(t, "USD")}}
	h.confirmed = append(clone(h.created), order.OrderConfirmed{})
	h.shipped = append(clone(h.confirmed), order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0001"})
	h.delivered = append(clone(h.shipped), order.OrderDelivered{Signature: "A. Lee"})
	h.cancelled = append(clone(h.confirmed), order.OrderCancelled{
		Reason: "customer changed their mind", CancelledBy: "support:ann", PreviousStatus: value.OrderStatusConfirmed,
	})
	return h
}

func clone(e []order.Event) []order.Event { return append([]order.Event(nil), e...) }

func fieldOf(err error) string { return domain.FieldOf(err) }

func codeOf(err error) string { return domain.CodeOf(err) }
