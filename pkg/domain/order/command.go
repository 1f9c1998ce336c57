// Package order is the Order aggregate: the commands a client may send about
// an order, the events that record what happened to it, and the pure
// functions Decide, Apply and Fold that connect them.
//
// # Decide checks, in this order
//
//  1. Existence: any command but CreateOrder on an order that does not exist
//     is a *domain.NotFoundError ("order.not_found").
//  2. The command's own fields: a *domain.RuleError (422) naming the field.
//  3. The order's state: a *domain.ConflictError (409) when the lifecycle
//     does not allow the command now, or a *domain.RuleError for a rule that
//     depends on state (a different currency in UpdateItems).
//  4. No-op: a command that is allowed but would change nothing returns no
//     events and no error, so a client may retry safely.
//
// # No-op or rejected
//
//   - CreateOrder on an existing order: rejected (order.already_exists), even
//     with identical contents, because the client may have reused an id.
//   - UpdateItems with the same items in the same order (line order is what
//     the customer sees, so reordering is a change): no-op in CREATED;
//     rejected outside CREATED (order.not_editable), identical or not,
//     because the order can no longer be edited at all.
//   - ConfirmOrder on a CONFIRMED order: no-op.
//   - ShipOrder on a SHIPPED order with the carrier and tracking number it
//     shipped with: no-op; with different ones: rejected
//     (order.already_shipped), since a retry carries the same payload and a
//     different payload contradicts what was recorded.
//   - DeliverOrder on a DELIVERED order with the same signature: no-op; with
//     a different one: rejected (order.already_delivered).
//   - CancelOrder on a CANCELLED order with the same reason and canceller:
//     no-op; otherwise rejected (order.already_cancelled).
//   - Every other transition the lifecycle does not allow (confirm a shipped
//     order, ship an unconfirmed one, cancel a delivered one, anything on a
//     cancelled one): rejected (order.invalid_transition).
package order

import (
	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// AggregateType names the aggregate in the event store and in topic names.
const AggregateType = "order"

// Limits on free-text command fields, in characters.
const (
	MaxItems             = 100
	MaxCarrierLen        = 100
	MaxTrackingNumberLen = 100
	MaxSignatureLen      = 200
	MaxCancelReasonLen   = 500
	MaxCancelledByLen    = 200
)

// Command is a request to change an order. Only the types in this package
// implement it, so Decide can handle every command.
type Command interface {
	domain.Command
	orderCommand()
}

// CreateOrder opens a new order. OrderID and CustomerID are canonical
// lower-case UUIDs; the items must be non-empty, in one currency, with no
// product twice.
type CreateOrder struct {
	OrderID    string
	CustomerID string
	Items      []value.OrderItem
}

// UpdateItems replaces all items of an order that is still CREATED. The
// currency cannot change.
type UpdateItems struct {
	Items []value.OrderItem
}

// ConfirmOrder moves a CREATED order to CONFIRMED.
type ConfirmOrder struct{}

// ShipOrder moves a CONFIRMED order to SHIPPED; both fields are required.
type ShipOrder struct {
	Carrier        string
	TrackingNumber string
}

// DeliverOrder moves a SHIPPED order to DELIVERED. The signature is
// optional.
type DeliverOrder struct {
	Signature string
}

// CancelOrder cancels an order that is CREATED, CONFIRMED or SHIPPED. Both
// the reason and who cancelled are required.
type CancelOrder struct {
	Reason      string
	CancelledBy string
}

// CommandType implements domain.Command.
func (CreateOrder) CommandType() string { return "CreateOrder" }

// CommandType implements domain.Command.
func (UpdateItems) CommandType() string { return "UpdateItems" }

// CommandType implements domain.Command.
func (ConfirmOrder) CommandType() string { return "ConfirmOrder" }

// CommandType implements domain.Command.
func (ShipOrder) CommandType() string { return "ShipOrder" }

// CommandType implements domain.Command.
func (DeliverOrder) CommandType() string { return "DeliverOrder" }

// CommandType implements domain.Command.
func (CancelOrder) CommandType() string { return "CancelOrder" }

func (CreateOrder) orderCommand()  {}
func (UpdateItems) orderCommand()  {}
func (ConfirmOrder) orderCommand() {}
func (ShipOrder) orderCommand()    {}
func (DeliverOrder) orderCommand() {}
func (CancelOrder) orderCommand()  {}
