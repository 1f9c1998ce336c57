package order

import (
	"fmt"
	"slices"
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/internal/text"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

var (
	carrierSpec = text.Spec{Code: "order.carrier", Field: "carrier", Label: "the carrier",
		Max: MaxCarrierLen, Required: true}
	trackingSpec = text.Spec{Code: "order.tracking_number", Field: "tracking_number", Label: "the tracking number",
		Max: MaxTrackingNumberLen, Required: true}
	signatureSpec = text.Spec{Code: "order.signature", Field: "signature", Label: "the signature",
		Max: MaxSignatureLen}
	reasonSpec = text.Spec{Code: "order.reason", Field: "reason", Label: "the cancellation reason",
		Max: MaxCancelReasonLen, Required: true}
	cancelledBySpec = text.Spec{Code: "order.cancelled_by", Field: "cancelled_by", Label: "who cancelled",
		Max: MaxCancelledByLen, Required: true}
)

// Decide returns the events that cmd causes on an order in state s, or an
// error saying why it is refused: *domain.NotFoundError,
// *domain.RuleError or *domain.ConflictError, with a stable Code. It returns
// neither events nor an error when cmd would change nothing (see the package
// documentation for which commands those are). Text fields are trimmed
// before they are checked and recorded.
func Decide(s State, cmd Command) ([]Event, error) {
	switch cmd.(type) {
	case CreateOrder:
	case UpdateItems, ConfirmOrder, ShipOrder, DeliverOrder, CancelOrder:
		if !s.Exists() {
			return nil, domain.NewNotFoundError("order.not_found", "", "the order does not exist")
		}
	default:
		return nil, unsupported(cmd)
	}
	switch c := cmd.(type) {
	case CreateOrder:
		return create(s, c)
	case UpdateItems:
		return updateItems(s, c)
	case ConfirmOrder:
		return confirm(s)
	case ShipOrder:
		return ship(s, c)
	case DeliverOrder:
		return deliver(s, c)
	case CancelOrder:
		return cancel(s, c)
	}
	return nil, unsupported(cmd)
}

// unsupported reports a nil or pointer command: a programming error, so it
// is not a domain error and the HTTP layer answers 500.
func unsupported(cmd Command) error {
	return fmt.Errorf("order: unsupported command %T (commands are passed by value)", cmd)
}

func create(s State, c CreateOrder) ([]Event, error) {
	if !value.IsUUID(c.OrderID) {
		return nil, domain.NewValidationError("order.id_invalid", "order_id",
			"the order id must be a UUID in lower-case canonical form")
	}
	if !value.IsUUID(c.CustomerID) {
		return nil, domain.NewValidationError("order.customer_id_invalid", "customer_id",
			"the customer id must be a UUID in lower-case canonical form")
	}
	currency, err := checkItems(c.Items)
	if err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, domain.NewConflictError("order.already_exists", "an order with this id already exists")
	}
	return []Event{OrderCreated{
		OrderID:    c.OrderID,
		CustomerID: c.CustomerID,
		Items:      slices.Clone(c.Items),
		Currency:   currency,
	}}, nil
}

func updateItems(s State, c UpdateItems) ([]Event, error) {
	currency, err := checkItems(c.Items)
	if err != nil {
		return nil, err
	}
	if s.Status != value.OrderStatusCreated {
		return nil, domain.NewConflictError("order.not_editable",
			fmt.Sprintf("the items of a %s order can no longer be changed", lower(s.Status)))
	}
	if currency != s.Currency {
		return nil, domain.NewValidationError("order.currency_mismatch", "items",
			fmt.Sprintf("the order is in %s; its items cannot be priced in %s", s.Currency, currency))
	}
	if slices.Equal(c.Items, s.Items) {
		return nil, nil
	}
	return []Event{OrderItemsUpdated{Items: slices.Clone(c.Items)}}, nil
}

func confirm(s State) ([]Event, error) {
	switch s.Status {
	case value.OrderStatusCreated:
		return []Event{OrderConfirmed{}}, nil
	case value.OrderStatusConfirmed:
		return nil, nil
	}
	return nil, invalidTransition(s.Status, "confirmed")
}

func ship(s State, c ShipOrder) ([]Event, error) {
	carrier, err := text.Field(c.Carrier, carrierSpec)
	if err != nil {
		return nil, err
	}
	tracking, err := text.Field(c.TrackingNumber, trackingSpec)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case value.OrderStatusConfirmed:
		return []Event{OrderShipped{Carrier: carrier, TrackingNumber: tracking}}, nil
	case value.OrderStatusShipped:
		if carrier == s.Carrier && tracking == s.TrackingNumber {
			return nil, nil
		}
		return nil, domain.NewConflictError("order.already_shipped",
			fmt.Sprintf("the order has already shipped with %s, tracking number %s", s.Carrier, s.TrackingNumber))
	case value.OrderStatusCreated:
		return nil, domain.NewConflictError("order.invalid_transition",
			"the order must be confirmed before it ships")
	}
	return nil, invalidTransition(s.Status, "shipped")
}

func deliver(s State, c DeliverOrder) ([]Event, error) {
	signature, err := text.Field(c.Signature, signatureSpec)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case value.OrderStatusShipped:
		return []Event{OrderDelivered{Signature: signature}}, nil
	case value.OrderStatusDelivered:
		if signature == s.Signature {
			return nil, nil
		}
		return nil, domain.NewConflictError("order.already_delivered",
			"the order has already been delivered with a different signature")
	case value.OrderStatusCreated, value.OrderStatusConfirmed:
		return nil, domain.NewConflictError("order.invalid_transition",
			"the order must be shipped before it is delivered")
	}
	return nil, invalidTransition(s.Status, "delivered")
}

func cancel(s State, c CancelOrder) ([]Event, error) {
	reason, err := text.Field(c.Reason, reasonSpec)
	if err != nil {
		return nil, err
	}
	by, err := text.Field(c.CancelledBy, cancelledBySpec)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case value.OrderStatusCreated, value.OrderStatusConfirmed, value.OrderStatusShipped:
		return []Event{OrderCancelled{Reason: reason, CancelledBy: by, PreviousStatus: s.Status}}, nil
	case value.OrderStatusCancelled:
		if reason == s.CancelReason && by == s.CancelledBy {
			return nil, nil
		}
		return nil, domain.NewConflictError("order.already_cancelled", "the order has already been cancelled")
	}
	return nil, invalidTransition(s.Status, "cancelled")
}

// checkItems enforces the rules on an order's item list and returns the
// list's single currency.
func checkItems(items []value.OrderItem) (value.Currency, error) {
	if len(items) == 0 {
		return value.Currency{}, domain.NewValidationError("order.items_empty", "items",
			"an order needs at least one item")
	}
	if len(items) > MaxItems {
		return value.Currency{}, domain.NewValidationError("order.too_many_items", "items",
			fmt.Sprintf("an order can have at most %d items", MaxItems))
	}
	currency := items[0].Currency()
	seen := make(map[string]struct{}, len(items))
	for i, it := range items {
		field := fmt.Sprintf("items[%d]", i)
		if it.IsZero() {
			return value.Currency{}, domain.NewValidationError("order.item_invalid", field,
				"every item needs a product, a quantity and a price")
		}
		if it.Currency() != currency {
			return value.Currency{}, domain.NewValidationError("order.mixed_currencies", field+".unit_price",
				fmt.Sprintf("all items of an order must be in one currency; item %d is in %s, not %s",
					i, it.Currency(), currency))
		}
		if _, dup := seen[it.ProductID()]; dup {
			return value.Currency{}, domain.NewValidationError("order.duplicate_item", field+".product_id",
				fmt.Sprintf("product %s appears twice; combine the quantities into one item", it.ProductID()))
		}
		seen[it.ProductID()] = struct{}{}
	}
	if _, err := total(items, currency); err != nil {
		return value.Currency{}, domain.NewValidationError("order.total_overflow", "items",
			"the order total is too large")
	}
	return currency, nil
}

func total(items []value.OrderItem, currency value.Currency) (value.Money, error) {
	sum, err := value.NewMoney(0, currency)
	if err != nil {
		return value.Money{}, err
	}
	for _, it := range items {
		if sum, err = sum.Add(it.LineTotal()); err != nil {
			return value.Money{}, err
		}
	}
	return sum, nil
}

func invalidTransition(from value.OrderStatus, to string) error {
	return domain.NewConflictError("order.invalid_transition",
		fmt.Sprintf("a %s order cannot be %s", lower(from), to))
}

// lower names a status inside a sentence ("a shipped order ...").
func lower(s value.OrderStatus) string { return strings.ToLower(s.String()) }
