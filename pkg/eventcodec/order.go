package eventcodec

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
)

func newOrderMessage(eventType string) (proto.Message, error) {
	switch eventType {
	case order.EventOrderCreated:
		return &orderv1.OrderCreated{}, nil
	case order.EventOrderItemsUpdated:
		return &orderv1.OrderItemsUpdated{}, nil
	case order.EventOrderConfirmed:
		return &orderv1.OrderConfirmed{}, nil
	case order.EventOrderShipped:
		return &orderv1.OrderShipped{}, nil
	case order.EventOrderDelivered:
		return &orderv1.OrderDelivered{}, nil
	case order.EventOrderCancelled:
		return &orderv1.OrderCancelled{}, nil
	}
	return nil, fmt.Errorf("unknown order event type %q", eventType)
}

func orderToProto(e order.Event) (proto.Message, error) {
	switch e := e.(type) {
	case order.OrderCreated:
		return &orderv1.OrderCreated{OrderId: e.OrderID, CustomerId: e.CustomerID, Items: itemsToProto(e.Items), Currency: e.Currency.Code()}, nil
	case order.OrderItemsUpdated:
		return &orderv1.OrderItemsUpdated{Items: itemsToProto(e.Items)}, nil
	case order.OrderConfirmed:
		return &orderv1.OrderConfirmed{}, nil
	case order.OrderShipped:
		return &orderv1.OrderShipped{Carrier: e.Carrier, TrackingNumber: e.TrackingNumber}, nil
	case order.OrderDelivered:
		return &orderv1.OrderDelivered{Signature: e.Signature}, nil
	case order.OrderCancelled:
		return &orderv1.OrderCancelled{Reason: e.Reason, CancelledBy: e.CancelledBy, PreviousStatus: orderv1.OrderStatus(e.PreviousStatus)}, nil
	}
	return nil, fmt.Errorf("no contract for order event %T", e)
}

func orderFromProto(m proto.Message) (order.Event, error) {
	switch m := m.(type) {
	case *orderv1.OrderCreated:
		items, err := itemsFromProto(m.GetItems())
		if err != nil {
			return nil, err
		}
		cur, err := value.NewCurrency(m.GetCurrency())
		if err != nil {
			return nil, err
		}
		return order.OrderCreated{OrderID: m.GetOrderId(), CustomerID: m.GetCustomerId(), Items: items, Currency: cur}, nil
	case *orderv1.OrderItemsUpdated:
		items, err := itemsFromProto(m.GetItems())
		if err != nil {
			return nil, err
		}
		return order.OrderItemsUpdated{Items: items}, nil
	case *orderv1.OrderConfirmed:
		return order.OrderConfirmed{}, nil
	case *orderv1.OrderShipped:
		return order.OrderShipped{Carrier: m.GetCarrier(), TrackingNumber: m.GetTrackingNumber()}, nil
	case *orderv1.OrderDelivered:
		return order.OrderDelivered{Signature: m.GetSignature()}, nil
	case *orderv1.OrderCancelled:
		prev := enumFromProto[value.OrderStatus](int32(m.GetPreviousStatus()))
		if !prev.IsValid() {
			return nil, fmt.Errorf("OrderCancelled: invalid previous status %v", m.GetPreviousStatus())
		}
		return order.OrderCancelled{Reason: m.GetReason(), CancelledBy: m.GetCancelledBy(), PreviousStatus: prev}, nil
	}
	return nil, fmt.Errorf("no order event for %T", m)
}

func itemsToProto(items []value.OrderItem) []*orderv1.OrderItem {
	out := make([]*orderv1.OrderItem, len(items))
	for i, it := range items {
		out[i] = &orderv1.OrderItem{
			ProductId: it.ProductID(),
			Quantity:  int32(it.Quantity()), //nolint:gosec // OrderItem caps quantity far below int32
			UnitPrice: &orderv1.Money{AmountMinor: it.UnitPrice().Amount(), Currency: it.UnitPrice().Currency().Code()},
		}
	}
	return out
}

func itemsFromProto(items []*orderv1.OrderItem) ([]value.OrderItem, error) {
	out := make([]value.OrderItem, len(items))
	for i, it := range items {
		cur, err := value.NewCurrency(it.GetUnitPrice().GetCurrency())
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		price, err := value.NewMoney(it.GetUnitPrice().GetAmountMinor(), cur)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		item, err := value.NewOrderItem(it.GetProductId(), int64(it.GetQuantity()), price)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = item
	}
	return out, nil
}
