package customer

import (
	"slices"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

// SavedAddress is one of a customer's addresses with its id.
type SavedAddress struct {
	ID      string        `json:"id"`
	Address value.Address `json:"address"`
}

// State is a customer as its events describe it. The zero State is a
// customer that does not exist. The JSON tags are the shape of a snapshot.
type State struct {
	ID    string            `json:"id"`
	Name  string            `json:"name"`
	Email value.Email       `json:"email"`
	Phone value.PhoneNumber `json:"phone"`
	// Addresses are kept in the order they were added, so that a list shown
	// to the customer does not reshuffle.
	Addresses []SavedAddress       `json:"addresses"`
	Tier      value.CustomerTier   `json:"tier"`
	Status    value.CustomerStatus `json:"status"`
	// StatusReason is why the customer is SUSPENDED or DEACTIVATED, and
	// empty while ACTIVE.
	StatusReason string `json:"status_reason,omitempty"`
	// Forgotten is set by CustomerForgotten: the personal fields (name,
	// email, phone, addresses) are empty from then on, and every command
	// is refused. Status, tier and StatusReason stay.
	Forgotten bool `json:"forgotten,omitempty"`
	// Version is the number of events applied, which is the sequence
	// number of the last one in the event store.
	Version int64 `json:"version"`
}

// Exists reports whether the customer has been registered.
func (s State) Exists() bool { return s.ID != "" }

// Address returns the address stored under id.
func (s State) Address(id string) (value.Address, bool) {
	i := s.addressIndex(id)
	if i < 0 {
		return value.Address{}, false
	}
	return s.Addresses[i].Address, true
}

func (s State) addressIndex(id string) int {
	return slices.IndexFunc(s.Addresses, func(a SavedAddress) bool { return a.ID == id })
}

// Apply returns s with e applied. It never fails: an event is a fact, and
// refusing a fact would make history unreadable. Version grows by one for
// every event, so it always equals the event count. Apply never modifies
// the Addresses slice of its argument in place, because the caller's State
// (a value) shares it.
func Apply(s State, e Event) State {
	switch e := e.(type) {
	case CustomerRegistered:
		s.ID = e.CustomerID
		s.Name = e.Name
		s.Email = e.Email
		s.Phone = e.Phone
		s.Tier = e.Tier
		s.Status = e.Status
	case CustomerProfileUpdated:
		s.Name = e.Name
	case CustomerEmailChanged:
		s.Email = e.Email
	case CustomerPhoneChanged:
		s.Phone = e.Phone
	case CustomerAddressAdded:
		// Added once per id by Decide; replacing keeps Apply total should a
		// history ever hold the id twice.
		if i := s.addressIndex(e.AddressID); i >= 0 {
			s.Addresses = slices.Clone(s.Addresses)
			s.Addresses[i].Address = e.Address
			break
		}
		s.Addresses = append(slices.Clip(s.Addresses), SavedAddress{ID: e.AddressID, Address: e.Address})
	case CustomerAddressUpdated:
		if i := s.addressIndex(e.AddressID); i >= 0 {
			s.Addresses = slices.Clone(s.Addresses)
			s.Addresses[i].Address = e.Address
		}
	case CustomerAddressRemoved:
		if i := s.addressIndex(e.AddressID); i >= 0 {
			s.Addresses = slices.Delete(slices.Clone(s.Addresses), i, i+1)
			if len(s.Addresses) == 0 {
				// One spelling of "no addresses", so that states compare
				// equal however they were reached.
				s.Addresses = nil
			}
		}
	case CustomerTierUpgraded:
		s.Tier = e.To
	case CustomerSuspended:
		s.Status = value.CustomerStatusSuspended
		s.StatusReason = e.Reason
	case CustomerReactivated:
		s.Status = value.CustomerStatusActive
		s.StatusReason = ""
	case CustomerDeactivated:
		s.Status = value.CustomerStatusDeactivated
		s.StatusReason = e.Reason
	case CustomerForgotten:
		s.Forgotten = true
		s.Name, s.Email, s.Phone, s.Addresses = "", value.Email{}, value.PhoneNumber{}, nil
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

// Fold rebuilds a customer from its whole history.
func Fold(events []Event) State { return ApplyAll(State{}, events) }
