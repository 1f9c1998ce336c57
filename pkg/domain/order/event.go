package order

import (
	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// Event type names as stored in the event store's event_type column. They
// are part of the stored format and never change.
const (
	EventOrderCreated      = "OrderCreated"
	EventOrderItemsUpdated = "OrderItemsUpdated"
	EventOrderConfirmed    = "OrderConfirmed"
	EventOrderShipped      = "OrderShipped"
	EventOrderDelivered    = "OrderDelivered"
	EventOrderCancelled    = "OrderCancelled"
)

// EventTypes returns every order event type name, for registries that map
// names to decoders or upcasters.
func EventTypes() []string {
	return []string{
		EventOrderCreated, EventOrderItemsUpdated, EventOrderConfirmed,
		EventOrderShipped, EventOrderDelivered, EventOrderCancelled,
	}
}

// Event is a fact about an order. Only the types in this package implement
// it, so Apply can handle every event. Events have no JSON tags on purpose:
// they are stored (event_data) and published as protojson of their
// contracts in proto/, mapped by pkg/eventcodec, so that there is one
// encoding of an event. The JSON tags on State are the snapshot shape.
type Event interface {
	domain.Event
	orderEvent()
}

// OrderCreated records a new order with its first items.
type OrderCreated struct {
	OrderID    string
	CustomerID string
	Items      []value.OrderItem
	Currency   value.Currency
}

// OrderItemsUpdated records that an order's items were replaced as a whole.
type OrderItemsUpdated struct {
	Items []value.OrderItem
}

// OrderConfirmed records that an order was confirmed.
type OrderConfirmed struct{}

// OrderShipped records that an order left with a carrier.
type OrderShipped struct {
	Carrier        string
	TrackingNumber string
}

// OrderDelivered records delivery, with the signature if one was taken.
type OrderDelivered struct {
	Signature string
}

// OrderCancelled records a cancellation. PreviousStatus lets projections
// such as orders-by-status move the order out of the right bucket without
// reading its history.
type OrderCancelled struct {
	Reason         string
	CancelledBy    string
	PreviousStatus value.OrderStatus
}

// EventType implements domain.Event.
func (OrderCreated) EventType() string { return EventOrderCreated }

// EventType implements domain.Event.
func (OrderItemsUpdated) EventType() string { return EventOrderItemsUpdated }

// EventType implements domain.Event.
func (OrderConfirmed) EventType() string { return EventOrderConfirmed }

// EventType implements domain.Event.
func (OrderShipped) EventType() string { return EventOrderShipped }

// EventType implements domain.Event.
func (OrderDelivered) EventType() string { return EventOrderDelivered }

// EventType implements domain.Event.
func (OrderCancelled) EventType() string { return EventOrderCancelled }

func (OrderCreated) orderEvent()      {}
func (OrderItemsUpdated) orderEvent() {}
func (OrderConfirmed) orderEvent()    {}
func (OrderShipped) orderEvent()      {}
func (OrderDelivered) orderEvent()    {}
func (OrderCancelled) orderEvent()    {}
