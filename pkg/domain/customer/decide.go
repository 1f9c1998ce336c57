package customer

import (
	"fmt"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/internal/text"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

var (
	nameSpec = text.Spec{Code: "customer.name", Field: "name", Label: "the name",
		Max: MaxNameLen, Required: true}
	reasonSpec = text.Spec{Code: "customer.reason", Field: "reason", Label: "the reason",
		Max: MaxReasonLen, Required: true}
)

// Decide returns the events that cmd causes on a customer in state s, or an
// error saying why it is refused: *domain.NotFoundError,
// *domain.RuleError or *domain.ConflictError, with a stable Code. It returns
// neither events nor an error when cmd would change nothing (see the package
// documentation for which commands those are). Text fields are trimmed
// before they are checked and recorded.
func Decide(s State, cmd Command) ([]Event, error) {
	switch cmd.(type) {
	case RegisterCustomer:
	case UpdateProfile, ChangeEmail, ChangePhone, AddAddress, UpdateAddress, RemoveAddress,
		UpgradeTier, SuspendCustomer, ReactivateCustomer, DeactivateCustomer, ForgetCustomer:
		if !s.Exists() {
			return nil, domain.NewNotFoundError("customer.not_found", "", "the customer does not exist")
		}
	default:
		return nil, unsupported(cmd)
	}
	if s.Forgotten {
		if _, ok := cmd.(ForgetCustomer); ok {
			return nil, nil
		}
		return nil, Forgotten()
	}
	switch c := cmd.(type) {
	case RegisterCustomer:
		return register(s, c)
	case UpdateProfile:
		return updateProfile(s, c)
	case ChangeEmail:
		return changeEmail(s, c)
	case ChangePhone:
		return changePhone(s, c)
	case AddAddress:
		return addAddress(s, c)
	case UpdateAddress:
		return updateAddress(s, c)
	case RemoveAddress:
		return removeAddress(s, c)
	case UpgradeTier:
		return upgradeTier(s, c)
	case SuspendCustomer:
		return suspend(s, c)
	case ReactivateCustomer:
		return reactivate(s)
	case DeactivateCustomer:
		return deactivate(s, c)
	case ForgetCustomer:
		return []Event{CustomerForgotten{}}, nil
	}
	return nil, unsupported(cmd)
}

// CodeForgotten is the code of the refusal of every command to a
// forgotten customer.
const CodeForgotten = "customer.forgotten"

// Forgotten is the refusal of a command to a forgotten customer: a
// *domain.ConflictError with CodeForgotten, which the HTTP layer answers
// 410 Gone (the customer existed and will not come back).
func Forgotten() error {
	return domain.NewConflictError(CodeForgotten, "the customer asked to be forgotten; nothing can be changed or recorded about them any more")
}

// IsForgotten reports whether err is or wraps the refusal Forgotten.
func IsForgotten(err error) bool { return domain.CodeOf(err) == CodeForgotten }

// unsupported reports a nil or pointer command: a programming error, so it
// is not a domain error and the HTTP layer answers 500.
func unsupported(cmd Command) error {
	return fmt.Errorf("customer: unsupported command %T (commands are passed by value)", cmd)
}

func register(s State, c RegisterCustomer) ([]Event, error) {
	if !value.IsUUID(c.CustomerID) {
		return nil, domain.NewValidationError("customer.id_invalid", "customer_id",
			"the customer id must be a UUID in lower-case canonical form")
	}
	name, err := text.Field(c.Name, nameSpec)
	if err != nil {
		return nil, err
	}
	if c.Email.IsZero() {
		return nil, emailRequired()
	}
	if s.Exists() {
		return nil, domain.NewConflictError("customer.already_exists", "a customer with this id already exists")
	}
	return []Event{CustomerRegistered{
		CustomerID: c.CustomerID,
		Name:       name,
		Email:      c.Email,
		Phone:      c.Phone,
		Tier:       InitialTier,
		Status:     InitialStatus,
	}}, nil
}

func updateProfile(s State, c UpdateProfile) ([]Event, error) {
	name, err := text.Field(c.Name, nameSpec)
	if err != nil {
		return nil, err
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	if name == s.Name {
		return nil, nil
	}
	return []Event{CustomerProfileUpdated{Name: name}}, nil
}

func changeEmail(s State, c ChangeEmail) ([]Event, error) {
	if c.Email.IsZero() {
		return nil, emailRequired()
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	if c.Email == s.Email {
		return nil, nil
	}
	//lint:ignore S1016 commands and events evolve separately; a conversion would tie their fields together
	return []Event{CustomerEmailChanged{Email: c.Email}}, nil
}

func changePhone(s State, c ChangePhone) ([]Event, error) {
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	if c.Phone == s.Phone {
		return nil, nil
	}
	//lint:ignore S1016 commands and events evolve separately; a conversion would tie their fields together
	return []Event{CustomerPhoneChanged{Phone: c.Phone}}, nil
}

func addAddress(s State, c AddAddress) ([]Event, error) {
	if err := checkAddressID(c.AddressID); err != nil {
		return nil, err
	}
	if c.Address.IsZero() {
		return nil, addressRequired()
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	if current, ok := s.Address(c.AddressID); ok {
		if current == c.Address {
			return nil, nil
		}
		return nil, &domain.ConflictError{Code: "customer.address_exists", Field: "address_id",
			Message: "another address is already stored under this id; update it instead"}
	}
	if len(s.Addresses) >= MaxAddresses {
		return nil, domain.NewRuleError("customer.too_many_addresses",
			fmt.Sprintf("a customer can have at most %d addresses; remove one first", MaxAddresses))
	}
	//lint:ignore S1016 commands and events evolve separately; a conversion would tie their fields together
	return []Event{CustomerAddressAdded{AddressID: c.AddressID, Address: c.Address}}, nil
}

func updateAddress(s State, c UpdateAddress) ([]Event, error) {
	if err := checkAddressID(c.AddressID); err != nil {
		return nil, err
	}
	if c.Address.IsZero() {
		return nil, addressRequired()
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	current, ok := s.Address(c.AddressID)
	if !ok {
		return nil, addressNotFound()
	}
	if current == c.Address {
		return nil, nil
	}
	//lint:ignore S1016 commands and events evolve separately; a conversion would tie their fields together
	return []Event{CustomerAddressUpdated{AddressID: c.AddressID, Address: c.Address}}, nil
}

func removeAddress(s State, c RemoveAddress) ([]Event, error) {
	if err := checkAddressID(c.AddressID); err != nil {
		return nil, err
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	if _, ok := s.Address(c.AddressID); !ok {
		return nil, nil
	}
	//lint:ignore S1016 commands and events evolve separately; a conversion would tie their fields together
	return []Event{CustomerAddressRemoved{AddressID: c.AddressID}}, nil
}

func upgradeTier(s State, c UpgradeTier) ([]Event, error) {
	if !c.Tier.IsValid() {
		return nil, domain.NewValidationError("customer.tier_invalid", "tier",
			"the tier must be one of BRONZE, SILVER, GOLD or PLATINUM")
	}
	if err := mustBeActive(s); err != nil {
		return nil, err
	}
	switch {
	case c.Tier == s.Tier:
		return nil, nil
	case c.Tier.Less(s.Tier):
		return nil, domain.NewValidationError("customer.tier_downgrade", "tier",
			fmt.Sprintf("tiers only go up; the customer is already %s", s.Tier))
	}
	return []Event{CustomerTierUpgraded{From: s.Tier, To: c.Tier}}, nil
}

func suspend(s State, c SuspendCustomer) ([]Event, error) {
	reason, err := text.Field(c.Reason, reasonSpec)
	if err != nil {
		return nil, err
	}
	switch s.Status {
	case value.CustomerStatusActive:
		return []Event{CustomerSuspended{Reason: reason}}, nil
	case value.CustomerStatusSuspended:
		if reason == s.StatusReason {
			return nil, nil
		}
		return nil, domain.NewConflictError("customer.already_suspended",
			"the customer is already suspended for another reason")
	}
	return nil, deactivated()
}

func reactivate(s State) ([]Event, error) {
	switch s.Status {
	case value.CustomerStatusSuspended:
		return []Event{CustomerReactivated{}}, nil
	case value.CustomerStatusActive:
		return nil, nil
	}
	return nil, deactivated()
}

func deactivate(s State, c DeactivateCustomer) ([]Event, error) {
	reason, err := text.Field(c.Reason, reasonSpec)
	if err != nil {
		return nil, err
	}
	if s.Status == value.CustomerStatusDeactivated {
		if reason == s.StatusReason {
			return nil, nil
		}
		return nil, domain.NewConflictError("customer.already_deactivated",
			"the customer has already been deactivated for another reason")
	}
	return []Event{CustomerDeactivated{Reason: reason}}, nil
}

func mustBeActive(s State) error {
	switch s.Status {
	case value.CustomerStatusActive:
		return nil
	case value.CustomerStatusSuspended:
		return domain.NewConflictError("customer.suspended",
			"the customer is suspended; reactivate the customer first")
	}
	return deactivated()
}

func deactivated() error {
	return domain.NewConflictError("customer.deactivated", "the customer has been deactivated for good")
}

func checkAddressID(id string) error {
	if !value.IsUUID(id) {
		return domain.NewValidationError("customer.address_id_invalid", "address_id",
			"the address id must be a UUID in lower-case canonical form")
	}
	return nil
}

func emailRequired() error {
	return domain.NewValidationError("customer.email_required", "email", "an email address is required")
}

func addressRequired() error {
	return domain.NewValidationError("customer.address_required", "address", "an address is required")
}

func addressNotFound() error {
	return domain.NewNotFoundError("customer.address_not_found", "address_id",
		"the customer has no address with this id")
}
