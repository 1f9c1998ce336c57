// Package readmodel defines the four read models of orderstream — the
// order_read_model, orders_by_customer, orders_by_status and
// customer_read_model tables — as projector views (how an aggregate's
// events fold into the state a projector keeps, and which rows that state
// is), and the readers the query side uses to read their rows.
//
// Every row carries the aggregate's version, the sequence of the last event
// folded into it, so that a reader can wait for its own writes; the views
// therefore rewrite an aggregate's rows after each event. Timestamps are
// kept at millisecond precision, the precision of a CQL timestamp, so that
// what is written compares equal to what is read back.
package readmodel

import (
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Order is the state the order views keep per order: the domain state and
// the times the rows show. It round-trips through encoding/json, the form
// in which the projector checkpoints it.
type Order struct {
	State order.State `json:"state"`
	// CreatedAt is when the first event occurred, UpdatedAt when the
	// latest did.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// DeletedAt is when the order was cancelled; zero while it is not.
	DeletedAt time.Time `json:"deleted_at,omitzero"`
	// ShippedAt and DeliveredAt are when the order was shipped and
	// delivered; zero until then. A checkpoint written before schema v0005
	// lacks them: a rebuild of the view folds them from the events.
	ShippedAt   time.Time `json:"shipped_at,omitzero"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
}

// Customer is the state the customer view keeps per customer. It
// round-trips through encoding/json.
type Customer struct {
	State customer.State `json:"state"`
	// CreatedAt is when the first event occurred, UpdatedAt when the
	// latest did.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s Order) exists() bool   { return s.State.Exists() }
func (s Order) version() int64 { return s.State.Version }

func (s Customer) exists() bool   { return s.State.Exists() }
func (s Customer) version() int64 { return s.State.Version }

// FoldOrder applies one stored order event, already upcast to the current
// layout, to s. It fails, permanently, on an event it cannot read: one of
// another aggregate type, of a type or payload the codec does not know, one
// before the order's creation, or ids that are not UUIDs (the rows are
// keyed by them).
func FoldOrder(s Order, e eventstore.Event) (Order, error) {
	de, err := decode(e, order.AggregateType, "an order", eventcodec.OrderCodec{}.DecodeEvent)
	if err != nil {
		return s, err
	}
	switch de := de.(type) {
	case order.OrderCreated:
		if err := checkUUIDs("order_id", de.OrderID, "customer_id", de.CustomerID); err != nil {
			return s, fmt.Errorf("event %d of order %s: %w", e.Sequence, e.AggregateID, err)
		}
	default:
		if !s.State.Exists() {
			return s, fmt.Errorf("event %d of order %s: %s before %s", e.Sequence, e.AggregateID, e.Type, order.EventOrderCreated)
		}
	}
	at := touch(&s.CreatedAt, &s.UpdatedAt, e)
	s.State = order.Apply(s.State, de)
	switch de.(type) {
	case order.OrderCancelled:
		s.DeletedAt = at
	case order.OrderShipped:
		s.ShippedAt = at
	case order.OrderDelivered:
		s.DeliveredAt = at
	}
	return s, nil
}

// FoldCustomer applies one stored customer event, already upcast to the
// current layout, to s. It fails, permanently, on an event it cannot read:
// one of another aggregate type, of a type or payload the codec does not
// know, one before the customer's registration, or ids that are not UUIDs.
func FoldCustomer(s Customer, e eventstore.Event) (Customer, error) {
	de, err := decode(e, customer.AggregateType, "a customer", eventcodec.CustomerCodec{}.DecodeEvent)
	if err != nil {
		return s, err
	}
	var idErr error
	switch de := de.(type) {
	case customer.CustomerRegistered:
		idErr = checkUUIDs("customer_id", de.CustomerID)
	case customer.CustomerAddressAdded:
		idErr = checkUUIDs("address_id", de.AddressID)
	case customer.CustomerAddressUpdated:
		idErr = checkUUIDs("address_id", de.AddressID)
	}
	if idErr != nil {
		return s, fmt.Errorf("event %d of customer %s: %w", e.Sequence, e.AggregateID, idErr)
	}
	if _, ok := de.(customer.CustomerRegistered); !ok && !s.State.Exists() {
		return s, fmt.Errorf("event %d of customer %s: %s before %s", e.Sequence, e.AggregateID, e.Type, customer.EventCustomerRegistered)
	}
	touch(&s.CreatedAt, &s.UpdatedAt, e)
	s.State = customer.Apply(s.State, de)
	return s, nil
}

// decode checks that e is an event of aggregateType (named in the errors
// as what, e.g. "an order") and decodes it with the codec's dec.
func decode[E any](e eventstore.Event, aggregateType, what string, dec func(typ string, data []byte) (E, error)) (E, error) {
	if e.AggregateType != "" && e.AggregateType != aggregateType {
		var zero E
		return zero, fmt.Errorf("event %d of %s: a %s event is not %s event", e.Sequence, e.AggregateID, e.AggregateType, what)
	}
	de, err := dec(e.Type, e.Data)
	if err != nil {
		return de, fmt.Errorf("event %d of %s %s: %w", e.Sequence, aggregateType, e.AggregateID, err)
	}
	return de, nil
}

// touch records that e occurred, at millisecond precision: as the time of
// creation if created is not yet set, and as the time of the latest update.
// It returns that time.
func touch(created, updated *time.Time, e eventstore.Event) time.Time {
	at := Millis(e.OccurredAt)
	if created.IsZero() {
		*created = at
	}
	*updated = at
	return at
}

// Millis returns t in UTC truncated to milliseconds, the precision of a CQL
// timestamp, without a monotonic clock reading, so that a time compares
// equal (==) to itself read back from a row.
func Millis(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// checkUUIDs checks name/value pairs.
func checkUUIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := gocql.ParseUUID(pairs[i+1]); err != nil {
			return fmt.Errorf("%s %q is not a UUID", pairs[i], pairs[i+1])
		}
	}
	return nil
}
