package customer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

const (
	customerID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	homeID     = "0190f0a8-3c1b-7cc2-9d6e-5a4f3b2c1d01"
	workID     = "0190f0a8-3c1b-7cc2-9d6e-5a4f3b2c1d02"
	unknownID  = "0190f0a8-3c1b-7cc2-9d6e-5a4f3b2c1d99"
)

type errKind int

const (
	noError errKind = iota
	ruleErr
	conflictErr
	notFoundErr
)

// requireErr asserts that err is the domain error of the given kind and
// code, which is what the HTTP layer maps to a status.
func requireErr(t *testing.T, err error, kind errKind, code string) {
	t.Helper()
	require.Error(t, err)
	switch kind {
	case ruleErr:
		var e *domain.RuleError
		require.ErrorAs(t, err, &e)
	case conflictErr:
		var e *domain.ConflictError
		require.ErrorAs(t, err, &e)
	case notFoundErr:
		var e *domain.NotFoundError
		require.ErrorAs(t, err, &e)
	default:
		t.Fatalf("unexpected error: %v", err)
	}
	require.Equal(t, code, domain.CodeOf(err))
}

func email(t testing.TB, s string) value.Email {
	t.Helper()
	e, err := value.NewEmail(s)
	require.NoError(t, err)
	return e
}

func phone(t testing.TB, s string) value.PhoneNumber {
	t.Helper()
	p, err := value.NewPhoneNumber(s)
	require.NoError(t, err)
	return p
}

func address(t testing.TB, line1 string) value.Address {
	t.Helper()
	a, err := value.NewAddress(value.AddressFields{Line1: line1, City: "Berlin", PostalCode: "10115", Country: "DE"})
	require.NoError(t, err)
	return a
}

// history holds the events of a customer that reached each status the
// real way: registered, given a home address, upgraded to GOLD, then
// suspended or deactivated.
type history struct {
	active      []customer.Event
	suspended   []customer.Event
	deactivated []customer.Event
}

func newHistory(t testing.TB) history {
	var h history
	h.active = []customer.Event{
		customer.CustomerRegistered{
			CustomerID: customerID, Name: "Ann Lee", Email: email(t, "ann@example.com"), Phone: phone(t, "+491701234567"),
			Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive,
		},
		customer.CustomerAddressAdded{AddressID: homeID, Address: address(t, "Unter den Linden 1")},
		customer.CustomerTierUpgraded{From: value.CustomerTierBronze, To: value.CustomerTierGold},
	}
	h.suspended = append(clone(h.active), customer.CustomerSuspended{Reason: "chargeback"})
	h.deactivated = append(clone(h.active), customer.CustomerDeactivated{Reason: "erasure request"})
	return h
}

func clone(e []customer.Event) []customer.Event { return append([]customer.Event(nil), e...) }
