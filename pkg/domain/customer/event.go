package customer

import (
	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// Event type names as stored in the event store's event_type column. They
// are part of the stored format and never change.
const (
	EventCustomerRegistered     = "CustomerRegistered"
	EventCustomerProfileUpdated = "CustomerProfileUpdated"
	EventCustomerEmailChanged   = "CustomerEmailChanged"
	EventCustomerPhoneChanged   = "CustomerPhoneChanged"
	EventCustomerAddressAdded   = "CustomerAddressAdded"
	EventCustomerAddressUpdated = "CustomerAddressUpdated"
	EventCustomerAddressRemoved = "CustomerAddressRemoved"
	EventCustomerTierUpgraded   = "CustomerTierUpgraded"
	EventCustomerSuspended      = "CustomerSuspended"
	EventCustomerReactivated    = "CustomerReactivated"
	EventCustomerDeactivated    = "CustomerDeactivated"
	EventCustomerForgotten      = "CustomerForgotten"
)

// EventTypes returns every customer event type name, for registries that
// map names to decoders or upcasters.
func EventTypes() []string {
	return []string{
		EventCustomerRegistered, EventCustomerProfileUpdated, EventCustomerEmailChanged,
		EventCustomerPhoneChanged, EventCustomerAddressAdded, EventCustomerAddressUpdated,
		EventCustomerAddressRemoved, EventCustomerTierUpgraded, EventCustomerSuspended,
		EventCustomerReactivated, EventCustomerDeactivated, EventCustomerForgotten,
	}
}

// Event is a fact about a customer. Only the types in this package
// implement it, so Apply can handle every event. Events have no JSON tags
// on purpose: they are stored (event_data) and published as protojson of
// their contracts in proto/, mapped by pkg/eventcodec, so that there is one
// encoding of an event. The JSON tags on State and SavedAddress are the
// snapshot shape.
type Event interface {
	domain.Event
	customerEvent()
}

// CustomerRegistered records a new customer. Tier and Status carry the
// starting values so that projections need not know the rule that sets them.
type CustomerRegistered struct {
	CustomerID string
	Name       string
	Email      value.Email
	Phone      value.PhoneNumber
	Tier       value.CustomerTier
	Status     value.CustomerStatus
}

// CustomerProfileUpdated records a new name.
type CustomerProfileUpdated struct {
	Name string
}

// CustomerEmailChanged records a new e-mail address.
type CustomerEmailChanged struct {
	Email value.Email
}

// CustomerPhoneChanged records a new phone number; the zero value (an
// empty phone in the contract) means the phone was removed.
type CustomerPhoneChanged struct {
	Phone value.PhoneNumber
}

// CustomerAddressAdded records a new address under its id.
type CustomerAddressAdded struct {
	AddressID string
	Address   value.Address
}

// CustomerAddressUpdated records that the address under AddressID was
// replaced.
type CustomerAddressUpdated struct {
	AddressID string
	Address   value.Address
}

// CustomerAddressRemoved records that the address under AddressID was
// removed.
type CustomerAddressRemoved struct {
	AddressID string
}

// CustomerTierUpgraded records a move to a higher tier.
type CustomerTierUpgraded struct {
	From value.CustomerTier
	To   value.CustomerTier
}

// CustomerSuspended records a suspension and why.
type CustomerSuspended struct {
	Reason string
}

// CustomerReactivated records that a suspension was lifted.
type CustomerReactivated struct{}

// CustomerDeactivated records that the customer was closed for good, and
// why.
type CustomerDeactivated struct {
	Reason string
}

// CustomerForgotten records that the customer asked to be forgotten (GDPR
// art. 17) and their data key was destroyed: their personal fields are
// gone from the state and read redacted in every earlier event. It carries
// no personal data (not even who asked: that is in the audit log). It is
// final: every later command to the customer is refused.
type CustomerForgotten struct{}

// EventType implements domain.Event.
func (CustomerRegistered) EventType() string { return EventCustomerRegistered }

// EventType implements domain.Event.
func (CustomerProfileUpdated) EventType() string { return EventCustomerProfileUpdated }

// EventType implements domain.Event.
func (CustomerEmailChanged) EventType() string { return EventCustomerEmailChanged }

// EventType implements domain.Event.
func (CustomerPhoneChanged) EventType() string { return EventCustomerPhoneChanged }

// EventType implements domain.Event.
func (CustomerAddressAdded) EventType() string { return EventCustomerAddressAdded }

// EventType implements domain.Event.
func (CustomerAddressUpdated) EventType() string { return EventCustomerAddressUpdated }

// EventType implements domain.Event.
func (CustomerAddressRemoved) EventType() string { return EventCustomerAddressRemoved }

// EventType implements domain.Event.
func (CustomerTierUpgraded) EventType() string { return EventCustomerTierUpgraded }

// EventType implements domain.Event.
func (CustomerSuspended) EventType() string { return EventCustomerSuspended }

// EventType implements domain.Event.
func (CustomerReactivated) EventType() string { return EventCustomerReactivated }

// EventType implements domain.Event.
func (CustomerDeactivated) EventType() string { return EventCustomerDeactivated }

// EventType implements domain.Event.
func (CustomerForgotten) EventType() string { return EventCustomerForgotten }

func (CustomerRegistered) customerEvent()     {}
func (CustomerProfileUpdated) customerEvent() {}
func (CustomerEmailChanged) customerEvent()   {}
func (CustomerPhoneChanged) customerEvent()   {}
func (CustomerAddressAdded) customerEvent()   {}
func (CustomerAddressUpdated) customerEvent() {}
func (CustomerAddressRemoved) customerEvent() {}
func (CustomerTierUpgraded) customerEvent()   {}
func (CustomerSuspended) customerEvent()      {}
func (CustomerReactivated) customerEvent()    {}
func (CustomerDeactivated) customerEvent()    {}
func (CustomerForgotten) customerEvent()      {}
