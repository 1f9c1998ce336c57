package order

import (
	"slices"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

// State is an order as its events describe it. The zero State is an order
// that does not exist. The JSON tags are the shape of a snapshot.
type State struct {
	ID             string            `json:"id"`
	CustomerID     string            `json:"customer_id"`
	Items          []value.OrderItem `json:"items"`
	Currency       value.Currency    `json:"currency"`
	Status         value.OrderStatus `json:"status"`
	Carrier        string            `json:"carrier,omitempty"`
	TrackingNumber string            `json:"tracking_number,omitempty"`
	Signature      string            `json:"signature,omitempty"`
	CancelReason   string            `json:"cancel_reason,omitempty"`
	CancelledBy    string            `json:"cancelled_by,omitempty"`
	// Version is the number of events applied, which is the sequence
	// number of the last one in the event store.
	Version int64 `json:"version"`
}

// Exists reports whether the order has been created.
func (s State) Exists() bool { return s.ID != "" }

// Total returns the sum of the line totals. Decide refuses item lists whose
// total does not fit in int64, so for a state built from its events the sum
// is exact; should it ever overflow, Total returns the zero Money rather
// than a wrong amount.
func (s State) Total() value.Money {
	t, err := total(s.Items, s.Currency)
	if err != nil {
		return value.Money{}
	}
	return t
}

// Apply returns s with e applied. It never fails: an event is a fact, and
// refusing a fact would make history unreadable. Version grows by one for
// every event, including ones Apply has no use for, so it always equals the
// event count. Apply does not share slices with e, so later changes to
// either cannot leak into the other.
func Apply(s State, e Event) State {
	switch e := e.(type) {
	case OrderCreated:
		s.ID = e.OrderID
		s.CustomerID = e.CustomerID
		s.Items = slices.Clone(e.Items)
		s.Currency = e.Currency
		s.Status = value.OrderStatusCreated
	case OrderItemsUpdated:
		s.Items = slices.Clone(e.Items)
	case OrderConfirmed:
		s.Status = value.OrderStatusConfirmed
	case OrderShipped:
		s.Status = value.OrderStatusShipped
		s.Carrier = e.Carrier
		s.TrackingNumber = e.TrackingNumber
	case OrderDelivered:
		s.Status = value.OrderStatusDelivered
		s.Signature = e.Signature
	case OrderCancelled:
		s.Status = value.OrderStatusCancelled
		s.CancelReason = e.Reason
		s.CancelledBy = e.CancelledBy
	}
	s.Version++
	return s
}

// ApplyAll applies events to s in order, such as the events recorded after
// a snapshot.
func ApplyAll(s State, events []Event) State {
	for _, e := range events {
		s = Apply(s, e)
	}
	return s
}

// Fold rebuilds an order from its whole history.
func Fold(events []Event) State { return ApplyAll(State{}, events) }
