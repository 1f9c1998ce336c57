// Package customer is the Customer aggregate: the commands a client may send
// about a customer, the events that record what happened, and the pure
// functions Decide, Apply and Fold that connect them.
//
// New customers start ACTIVE at tier BRONZE. Profile, contact, address and
// tier changes need an ACTIVE customer. SUSPENDED customers can be
// reactivated or deactivated; DEACTIVATED is final.
//
// # Decide checks, in this order
//
//  1. Existence: any command but RegisterCustomer on a customer that does
//     not exist is a *domain.NotFoundError ("customer.not_found").
//  2. The command's own fields: a *domain.RuleError (422) naming the field.
//  3. The customer's status: a *domain.ConflictError (409)
//     ("customer.suspended", "customer.deactivated", ...). A command the
//     status does not allow is refused even if it would change nothing,
//     because the caller may not act on the customer at all.
//  4. Rules that depend on state: a missing address id is a NotFoundError,
//     a 21st address or a lower tier a RuleError.
//  5. No-op: a command that is allowed but would change nothing returns no
//     events and no error, so a client may retry safely.
//
// # No-op or rejected
//
//   - RegisterCustomer on an existing id: rejected (customer.already_exists),
//     even with identical data.
//   - UpdateProfile, ChangeEmail, ChangePhone with the current value: no-op.
//     ChangePhone with the zero PhoneNumber removes the phone; with no phone
//     on record it is a no-op.
//   - AddAddress with an id already on record: no-op if the address is the
//     same, rejected (customer.address_exists) if it differs. A no-op is
//     recognised before the 20-address limit is checked, so a retry of the
//     20th address succeeds.
//   - UpdateAddress of an unknown id: rejected (customer.address_not_found);
//     with the same address: no-op.
//   - RemoveAddress of an unknown id: no-op, like an HTTP DELETE, so a retry
//     after success does not fail.
//   - UpgradeTier to the current tier: no-op; to a lower one: rejected
//     (customer.tier_downgrade).
//   - SuspendCustomer on a SUSPENDED customer with the same reason: no-op;
//     with another reason: rejected (customer.already_suspended).
//   - ReactivateCustomer on an ACTIVE customer: no-op, the outcome is
//     already there.
//   - DeactivateCustomer on a DEACTIVATED customer with the same reason:
//     no-op; with another reason: rejected (customer.already_deactivated).
//   - Anything else on a DEACTIVATED customer: rejected
//     (customer.deactivated).
//   - ForgetCustomer: allowed in every status; on a forgotten customer a
//     no-op, so a retried forget finishes the job instead of failing.
//   - Anything else on a forgotten customer, RegisterCustomer of its id
//     included: rejected (customer.forgotten, CodeForgotten), before any
//     other check but existence. The HTTP layer answers 410 Gone.
package customer

import (
	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// AggregateType names the aggregate in the event store and in topic names.
const AggregateType = "customer"

// Limits, in characters where they are lengths.
const (
	MaxNameLen   = 200
	MaxReasonLen = 500
	MaxAddresses = 20
)

// Where every new customer starts.
const (
	InitialTier   = value.CustomerTierBronze
	InitialStatus = value.CustomerStatusActive
)

// Command is a request to change a customer. Only the types in this package
// implement it, so Decide can handle every command.
type Command interface {
	domain.Command
	customerCommand()
}

// RegisterCustomer creates a customer. CustomerID is a canonical lower-case
// UUID; Name is trimmed, 1..200 characters without control characters;
// Email is required; Phone is optional (the zero value means none).
type RegisterCustomer struct {
	CustomerID string
	Name       string
	Email      value.Email
	Phone      value.PhoneNumber
}

// UpdateProfile changes the customer's name (same rules as at
// registration).
type UpdateProfile struct {
	Name string
}

// ChangeEmail changes the customer's e-mail address; it is required.
type ChangeEmail struct {
	Email value.Email
}

// ChangePhone changes the customer's phone number; the zero value removes
// it.
type ChangePhone struct {
	Phone value.PhoneNumber
}

// AddAddress adds an address under a client-chosen id (a canonical
// lower-case UUID), which makes a retried AddAddress recognisable.
type AddAddress struct {
	AddressID string
	Address   value.Address
}

// UpdateAddress replaces the address stored under AddressID.
type UpdateAddress struct {
	AddressID string
	Address   value.Address
}

// RemoveAddress removes the address stored under AddressID.
type RemoveAddress struct {
	AddressID string
}

// UpgradeTier raises the customer's tier. Tiers never go down.
type UpgradeTier struct {
	Tier value.CustomerTier
}

// SuspendCustomer suspends an active customer; the reason is required.
type SuspendCustomer struct {
	Reason string
}

// ReactivateCustomer lifts a suspension.
type ReactivateCustomer struct{}

// DeactivateCustomer closes an active or suspended customer for good; the
// reason is required.
type DeactivateCustomer struct {
	Reason string
}

// ForgetCustomer forgets a customer (GDPR art. 17): it records
// CustomerForgotten, whatever the customer's status. The caller destroys
// the customer's data key after the event is committed.
type ForgetCustomer struct{}

// CommandType implements domain.Command.
func (RegisterCustomer) CommandType() string { return "RegisterCustomer" }

// CommandType implements domain.Command.
func (UpdateProfile) CommandType() string { return "UpdateProfile" }

// CommandType implements domain.Command.
func (ChangeEmail) CommandType() string { return "ChangeEmail" }

// CommandType implements domain.Command.
func (ChangePhone) CommandType() string { return "ChangePhone" }

// CommandType implements domain.Command.
func (AddAddress) CommandType() string { return "AddAddress" }

// CommandType implements domain.Command.
func (UpdateAddress) CommandType() string { return "UpdateAddress" }

// CommandType implements domain.Command.
func (RemoveAddress) CommandType() string { return "RemoveAddress" }

// CommandType implements domain.Command.
func (UpgradeTier) CommandType() string { return "UpgradeTier" }

// CommandType implements domain.Command.
func (SuspendCustomer) CommandType() string { return "SuspendCustomer" }

// CommandType implements domain.Command.
func (ReactivateCustomer) CommandType() string { return "ReactivateCustomer" }

// CommandType implements domain.Command.
func (DeactivateCustomer) CommandType() string { return "DeactivateCustomer" }

// CommandType implements domain.Command.
func (ForgetCustomer) CommandType() string { return "ForgetCustomer" }

func (RegisterCustomer) customerCommand()   {}
func (UpdateProfile) customerCommand()      {}
func (ChangeEmail) customerCommand()        {}
func (ChangePhone) customerCommand()        {}
func (AddAddress) customerCommand()         {}
func (UpdateAddress) customerCommand()      {}
func (RemoveAddress) customerCommand()      {}
func (UpgradeTier) customerCommand()        {}
func (SuspendCustomer) customerCommand()    {}
func (ReactivateCustomer) customerCommand() {}
func (DeactivateCustomer) customerCommand() {}
func (ForgetCustomer) customerCommand()     {}
