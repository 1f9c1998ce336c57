package customer_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestFoldBuildsTheState(t *testing.T) {
	h := newHistory(t)
	home := customer.SavedAddress{ID: homeID, Address: address(t, "Unter den Linden 1")}
	work := customer.SavedAddress{ID: workID, Address: address(t, "Friedrichstraße 43")}
	base := customer.State{
		ID: customerID, Name: "Ann Lee", Email: email(t, "ann@example.com"), Phone: phone(t, "+491701234567"),
		Addresses: []customer.SavedAddress{home}, Tier: value.CustomerTierGold, Status: value.CustomerStatusActive, Version: 3,
	}
	with := func(edit func(*customer.State)) customer.State {
		s := base
		edit(&s)
		return s
	}

	tests := []struct {
		name   string
		events []customer.Event
		want   customer.State
	}{
		{"empty", nil, customer.State{}},
		{"registered", h.active[:1], with(func(s *customer.State) {
			s.Addresses, s.Tier, s.Version = nil, value.CustomerTierBronze, 1
		})},
		{"active", h.active, base},
		{"suspended", h.suspended, with(func(s *customer.State) {
			s.Status, s.StatusReason, s.Version = value.CustomerStatusSuspended, "chargeback", 4
		})},
		{"reactivated", append(clone(h.suspended), customer.CustomerReactivated{}), with(func(s *customer.State) {
			s.Version = 5
		})},
		{"deactivated", h.deactivated, with(func(s *customer.State) {
			s.Status, s.StatusReason, s.Version = value.CustomerStatusDeactivated, "erasure request", 4
		})},
		{"profile, email and phone", append(clone(h.active),
			customer.CustomerProfileUpdated{Name: "Ann Smith"},
			customer.CustomerEmailChanged{Email: email(t, "ann@smith.example")},
			customer.CustomerPhoneChanged{},
		), with(func(s *customer.State) {
			s.Name, s.Email, s.Phone, s.Version = "Ann Smith", email(t, "ann@smith.example"), value.PhoneNumber{}, 6
		})},
		{"addresses keep their order", append(clone(h.active),
			customer.CustomerAddressAdded{AddressID: workID, Address: work.Address},
			customer.CustomerAddressUpdated{AddressID: homeID, Address: address(t, "Moved 1")},
		), with(func(s *customer.State) {
			s.Addresses = []customer.SavedAddress{{ID: homeID, Address: address(t, "Moved 1")}, work}
			s.Version = 5
		})},
		{"address removed", append(clone(h.active),
			customer.CustomerAddressAdded{AddressID: workID, Address: work.Address},
			customer.CustomerAddressRemoved{AddressID: homeID},
		), with(func(s *customer.State) {
			s.Addresses = []customer.SavedAddress{work}
			s.Version = 5
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := customer.Fold(tt.events)
			require.Equal(t, tt.want, got)
			require.Equal(t, len(tt.events) > 0, got.Exists())
		})
	}
}

func TestApplyIsTotal(t *testing.T) {
	h := newHistory(t)
	s := customer.Fold(h.active)

	// Decide never emits these, but a history must still fold.
	again := customer.Apply(s, customer.CustomerAddressAdded{AddressID: homeID, Address: address(t, "Twice")})
	require.Len(t, again.Addresses, 1)
	require.Equal(t, "Twice", again.Addresses[0].Address.Line1())

	missing := customer.Apply(s, customer.CustomerAddressUpdated{AddressID: unknownID, Address: address(t, "x")})
	require.Equal(t, s.Addresses, missing.Addresses)
	missing = customer.Apply(s, customer.CustomerAddressRemoved{AddressID: unknownID})
	require.Equal(t, s.Addresses, missing.Addresses)

	require.Equal(t, s.Version+1, customer.Apply(s, nil).Version)
}

func TestApplyDoesNotShareAddresses(t *testing.T) {
	h := newHistory(t)
	s := customer.Fold(h.active)
	before := append([]customer.SavedAddress(nil), s.Addresses...)

	// Give the slice spare capacity, the case where a careless append
	// would write into memory the old state still sees.
	s.Addresses = append(make([]customer.SavedAddress, 0, 8), s.Addresses...)
	_ = customer.Apply(s, customer.CustomerAddressUpdated{AddressID: homeID, Address: address(t, "Changed")})
	_ = customer.Apply(s, customer.CustomerAddressRemoved{AddressID: homeID})
	added := customer.Apply(s, customer.CustomerAddressAdded{AddressID: workID, Address: address(t, "W")})
	_ = customer.Apply(s, customer.CustomerAddressAdded{AddressID: unknownID, Address: address(t, "U")})
	require.Equal(t, before, s.Addresses)
	require.Equal(t, workID, added.Addresses[1].ID)
}

func TestApplyAllContinuesFromASnapshot(t *testing.T) {
	h := newHistory(t)
	snapshot := customer.Fold(h.suspended[:2])
	require.Equal(t, customer.Fold(h.suspended), customer.ApplyAll(snapshot, h.suspended[2:]))
}

func TestStateAddress(t *testing.T) {
	s := customer.Fold(newHistory(t).active)
	a, ok := s.Address(homeID)
	require.True(t, ok)
	require.Equal(t, address(t, "Unter den Linden 1"), a)
	_, ok = s.Address(unknownID)
	require.False(t, ok)
}

func allEventKinds(t testing.TB) []customer.Event {
	h := newHistory(t)
	return append(clone(h.suspended),
		customer.CustomerReactivated{},
		customer.CustomerProfileUpdated{Name: "Ann Smith"},
		customer.CustomerEmailChanged{Email: email(t, "ann@smith.example")},
		customer.CustomerPhoneChanged{},
		customer.CustomerPhoneChanged{Phone: phone(t, "+4930123456")},
		customer.CustomerAddressUpdated{AddressID: homeID, Address: address(t, "Moved 1")},
		customer.CustomerAddressRemoved{AddressID: homeID},
		customer.CustomerDeactivated{Reason: "closed"},
		customer.CustomerForgotten{},
	)
}

// TestStateRoundTripsThroughJSONAfterEveryEvent checks that what each event
// type does to the state survives a snapshot: a state folded up to any event
// encodes as JSON and decodes to itself. (Events themselves are stored as
// protojson by pkg/eventcodec and tested there.)
func TestStateRoundTripsThroughJSONAfterEveryEvent(t *testing.T) {
	events := allEventKinds(t)
	seen := map[string]bool{}
	for n := 1; n <= len(events); n++ {
		e := events[n-1]
		t.Run(e.EventType(), func(t *testing.T) {
			s := customer.Fold(events[:n])
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var got customer.State
			require.NoError(t, json.Unmarshal(b, &got))
			require.Equal(t, s, got)
		})
		seen[e.EventType()] = true
	}
	for _, name := range customer.EventTypes() {
		require.True(t, seen[name], "no round-trip test for %s", name)
	}
	require.Len(t, seen, len(customer.EventTypes()))
}

func TestStateSnapshotJSON(t *testing.T) {
	s := customer.Fold(allEventKinds(t)[:8])
	require.NotEmpty(t, s.Addresses)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	var got customer.State
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, s, got)
}

// TestStateJSONShape pins the snapshot shape, which is stored and read back
// by later versions of the service.
func TestStateJSONShape(t *testing.T) {
	h := newHistory(t)
	b, err := json.Marshal(customer.Fold(h.active[:1]))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+customerID+`","name":"Ann Lee","email":"ann@example.com",
		"phone":"+491701234567","addresses":null,"tier":"BRONZE","status":"ACTIVE","version":1}`, string(b))

	b, err = json.Marshal(customer.Fold(append(clone(h.suspended), customer.CustomerPhoneChanged{})))
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+customerID+`","name":"Ann Lee","email":"ann@example.com","phone":"",
		"addresses":[{"id":"`+homeID+`","address":{"label":"","line1":"Unter den Linden 1","line2":"","city":"Berlin",
		"region":"","postal_code":"10115","country":"DE"}}],
		"tier":"GOLD","status":"SUSPENDED","status_reason":"chargeback","version":5}`, string(b),
		"a removed phone is stored as an empty string")

	b, err = json.Marshal(customer.Fold(append(clone(h.active), customer.CustomerTierUpgraded{From: value.CustomerTierGold, To: value.CustomerTierPlatinum})))
	require.NoError(t, err)
	var tier struct{ Tier string }
	require.NoError(t, json.Unmarshal(b, &tier))
	require.Equal(t, "PLATINUM", tier.Tier)
}

func TestEventTypeNames(t *testing.T) {
	events := []customer.Event{
		customer.CustomerRegistered{}, customer.CustomerProfileUpdated{}, customer.CustomerEmailChanged{},
		customer.CustomerPhoneChanged{}, customer.CustomerAddressAdded{}, customer.CustomerAddressUpdated{},
		customer.CustomerAddressRemoved{}, customer.CustomerTierUpgraded{}, customer.CustomerSuspended{},
		customer.CustomerReactivated{}, customer.CustomerDeactivated{}, customer.CustomerForgotten{},
	}
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = e.EventType()
	}
	require.Equal(t, []string{
		"CustomerRegistered", "CustomerProfileUpdated", "CustomerEmailChanged", "CustomerPhoneChanged",
		"CustomerAddressAdded", "CustomerAddressUpdated", "CustomerAddressRemoved", "CustomerTierUpgraded",
		"CustomerSuspended", "CustomerReactivated", "CustomerDeactivated", "CustomerForgotten",
	}, names)
	require.Equal(t, names, customer.EventTypes())
}

func TestRemovingTheLastAddressLeavesNil(t *testing.T) {
	s := customer.Fold(append(clone(newHistory(t).active), customer.CustomerAddressRemoved{AddressID: homeID}))
	require.Nil(t, s.Addresses)
	require.Equal(t, customer.Fold(newHistory(t).active[:1]).Addresses, s.Addresses)
}
