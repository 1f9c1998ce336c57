package eventcodec

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
)

func newCustomerMessage(eventType string) (proto.Message, error) {
	switch eventType {
	case customer.EventCustomerRegistered:
		return &customerv1.CustomerRegistered{}, nil
	case customer.EventCustomerProfileUpdated:
		return &customerv1.CustomerProfileUpdated{}, nil
	case customer.EventCustomerEmailChanged:
		return &customerv1.CustomerEmailChanged{}, nil
	case customer.EventCustomerPhoneChanged:
		return &customerv1.CustomerPhoneChanged{}, nil
	case customer.EventCustomerAddressAdded:
		return &customerv1.CustomerAddressAdded{}, nil
	case customer.EventCustomerAddressUpdated:
		return &customerv1.CustomerAddressUpdated{}, nil
	case customer.EventCustomerAddressRemoved:
		return &customerv1.CustomerAddressRemoved{}, nil
	case customer.EventCustomerTierUpgraded:
		return &customerv1.CustomerTierUpgraded{}, nil
	case customer.EventCustomerSuspended:
		return &customerv1.CustomerSuspended{}, nil
	case customer.EventCustomerReactivated:
		return &customerv1.CustomerReactivated{}, nil
	case customer.EventCustomerDeactivated:
		return &customerv1.CustomerDeactivated{}, nil
	case customer.EventCustomerForgotten:
		return &customerv1.CustomerForgotten{}, nil
	}
	return nil, fmt.Errorf("unknown customer event type %q", eventType)
}

func customerToProto(e customer.Event) (proto.Message, error) {
	switch e := e.(type) {
	case customer.CustomerRegistered:
		return &customerv1.CustomerRegistered{
			CustomerId: e.CustomerID, Name: e.Name, Email: e.Email.String(), Phone: e.Phone.String(),
			Tier: customerv1.CustomerTier(e.Tier), Status: customerv1.CustomerStatus(e.Status),
		}, nil
	case customer.CustomerProfileUpdated:
		return &customerv1.CustomerProfileUpdated{Name: e.Name}, nil
	case customer.CustomerEmailChanged:
		return &customerv1.CustomerEmailChanged{Email: e.Email.String()}, nil
	case customer.CustomerPhoneChanged:
		return &customerv1.CustomerPhoneChanged{Phone: e.Phone.String()}, nil
	case customer.CustomerAddressAdded:
		return &customerv1.CustomerAddressAdded{AddressId: e.AddressID, Address: addressToProto(e.Address)}, nil
	case customer.CustomerAddressUpdated:
		return &customerv1.CustomerAddressUpdated{AddressId: e.AddressID, Address: addressToProto(e.Address)}, nil
	case customer.CustomerAddressRemoved:
		return &customerv1.CustomerAddressRemoved{AddressId: e.AddressID}, nil
	case customer.CustomerTierUpgraded:
		return &customerv1.CustomerTierUpgraded{From: customerv1.CustomerTier(e.From), To: customerv1.CustomerTier(e.To)}, nil
	case customer.CustomerSuspended:
		return &customerv1.CustomerSuspended{Reason: e.Reason}, nil
	case customer.CustomerReactivated:
		return &customerv1.CustomerReactivated{}, nil
	case customer.CustomerDeactivated:
		return &customerv1.CustomerDeactivated{Reason: e.Reason}, nil
	case customer.CustomerForgotten:
		return &customerv1.CustomerForgotten{}, nil
	}
	return nil, fmt.Errorf("no contract for customer event %T", e)
}

func customerFromProto(m proto.Message) (customer.Event, error) {
	switch m := m.(type) {
	case *customerv1.CustomerRegistered:
		email, err := emailFromProto(m.GetEmail())
		if err != nil {
			return nil, err
		}
		phone, err := phoneFromProto(m.GetPhone())
		if err != nil {
			return nil, err
		}
		tier, status := enumFromProto[value.CustomerTier](int32(m.GetTier())), enumFromProto[value.CustomerStatus](int32(m.GetStatus()))
		if !tier.IsValid() || !status.IsValid() {
			return nil, fmt.Errorf("CustomerRegistered: invalid tier %v or status %v", m.GetTier(), m.GetStatus())
		}
		return customer.CustomerRegistered{CustomerID: m.GetCustomerId(), Name: m.GetName(), Email: email, Phone: phone, Tier: tier, Status: status}, nil
	case *customerv1.CustomerProfileUpdated:
		return customer.CustomerProfileUpdated{Name: m.GetName()}, nil
	case *customerv1.CustomerEmailChanged:
		email, err := emailFromProto(m.GetEmail())
		if err != nil {
			return nil, err
		}
		return customer.CustomerEmailChanged{Email: email}, nil
	case *customerv1.CustomerPhoneChanged:
		phone, err := phoneFromProto(m.GetPhone())
		if err != nil {
			return nil, err
		}
		return customer.CustomerPhoneChanged{Phone: phone}, nil
	case *customerv1.CustomerAddressAdded:
		addr, err := addressFromProto(m.GetAddress())
		if err != nil {
			return nil, err
		}
		return customer.CustomerAddressAdded{AddressID: m.GetAddressId(), Address: addr}, nil
	case *customerv1.CustomerAddressUpdated:
		addr, err := addressFromProto(m.GetAddress())
		if err != nil {
			return nil, err
		}
		return customer.CustomerAddressUpdated{AddressID: m.GetAddressId(), Address: addr}, nil
	case *customerv1.CustomerAddressRemoved:
		return customer.CustomerAddressRemoved{AddressID: m.GetAddressId()}, nil
	case *customerv1.CustomerTierUpgraded:
		from, to := enumFromProto[value.CustomerTier](int32(m.GetFrom())), enumFromProto[value.CustomerTier](int32(m.GetTo()))
		if !from.IsValid() || !to.IsValid() {
			return nil, fmt.Errorf("CustomerTierUpgraded: invalid tiers %v → %v", m.GetFrom(), m.GetTo())
		}
		return customer.CustomerTierUpgraded{From: from, To: to}, nil
	case *customerv1.CustomerSuspended:
		return customer.CustomerSuspended{Reason: m.GetReason()}, nil
	case *customerv1.CustomerReactivated:
		return customer.CustomerReactivated{}, nil
	case *customerv1.CustomerDeactivated:
		return customer.CustomerDeactivated{Reason: m.GetReason()}, nil
	case *customerv1.CustomerForgotten:
		return customer.CustomerForgotten{}, nil
	}
	return nil, fmt.Errorf("no customer event for %T", m)
}

func addressToProto(a value.Address) *customerv1.Address {
	f := a.Fields()
	return &customerv1.Address{Label: f.Label, Line1: f.Line1, Line2: f.Line2, City: f.City, Region: f.Region, PostalCode: f.PostalCode, Country: f.Country}
}

// The personal fields decode through these: a sealed or redacted value
// (value.IsOpaque) is kept verbatim, unvalidated, so that a reader without
// the customer's key (a projector) can fold the event and copy the sealed
// text on; a clear value is validated as always.

func emailFromProto(s string) (value.Email, error) {
	if e, ok := value.OpaqueEmail(s); ok {
		return e, nil
	}
	return value.NewEmail(s)
}

// phoneFromProto reads an optional phone: empty is none.
func phoneFromProto(s string) (value.PhoneNumber, error) {
	if s == "" {
		return value.PhoneNumber{}, nil
	}
	if p, ok := value.OpaquePhoneNumber(s); ok {
		return p, nil
	}
	return value.NewPhoneNumber(s)
}

func addressFromProto(a *customerv1.Address) (value.Address, error) {
	f := value.AddressFields{
		Label: a.GetLabel(), Line1: a.GetLine1(), Line2: a.GetLine2(), City: a.GetCity(),
		Region: a.GetRegion(), PostalCode: a.GetPostalCode(), Country: a.GetCountry(),
	}
	if addr, ok := value.OpaqueAddress(f); ok {
		return addr, nil
	}
	return value.NewAddress(f)
}

// upcastCustomerRegisteredV1 brings a version 1 CustomerRegistered (one
// full_name, no phone, no tier or status) to version 2: the name carries
// over, and the tier and status are the ones every customer started with.
func upcastCustomerRegisteredV1(data []byte) ([]byte, error) {
	var v1 customerv1.CustomerRegisteredV1
	if err := unmarshal.Unmarshal(data, &v1); err != nil {
		return nil, fmt.Errorf("decoding CustomerRegistered v1: %w", err)
	}
	return marshal.Marshal(&customerv1.CustomerRegistered{
		CustomerId: v1.GetCustomerId(),
		Name:       v1.GetFullName(),
		Email:      v1.GetEmail(),
		Tier:       customerv1.CustomerTier_CUSTOMER_TIER_BRONZE,
		Status:     customerv1.CustomerStatus_CUSTOMER_STATUS_ACTIVE,
	})
}
