package customer_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// TestDecideEveryCommandInEveryState walks every command, with a changing
// payload and with the current payload, against a customer that does not
// exist and one in each status.
func TestDecideEveryCommandInEveryState(t *testing.T) {
	h := newHistory(t)
	home := address(t, "Unter den Linden 1")
	work := address(t, "Friedrichstraße 43")

	register := customer.RegisterCustomer{CustomerID: customerID, Name: "Ann Lee", Email: email(t, "ann@example.com")}
	registered := customer.CustomerRegistered{
		CustomerID: customerID, Name: "Ann Lee", Email: email(t, "ann@example.com"),
		Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive,
	}

	states := map[string][]customer.Event{
		"none": nil, "active": h.active, "suspended": h.suspended, "deactivated": h.deactivated,
	}
	type outcome struct {
		events []customer.Event
		kind   errKind
		code   string
	}
	noop := outcome{}
	ok := func(e ...customer.Event) outcome { return outcome{events: e} }
	conflict := func(code string) outcome { return outcome{kind: conflictErr, code: code} }
	notFound := outcome{kind: notFoundErr, code: "customer.not_found"}
	suspended := conflict("customer.suspended")
	deactivated := conflict("customer.deactivated")
	// onlyActive is the outcome of a change that needs an ACTIVE customer.
	onlyActive := func(active outcome) map[string]outcome {
		return map[string]outcome{"none": notFound, "active": active, "suspended": suspended, "deactivated": deactivated}
	}

	tests := []struct {
		name string
		cmd  customer.Command
		want map[string]outcome
	}{
		{"register", register, map[string]outcome{
			"none": ok(registered), "active": conflict("customer.already_exists"),
			"suspended": conflict("customer.already_exists"), "deactivated": conflict("customer.already_exists"),
		}},
		{"update profile", customer.UpdateProfile{Name: "Ann Smith"}, onlyActive(ok(customer.CustomerProfileUpdated{Name: "Ann Smith"}))},
		{"update profile unchanged", customer.UpdateProfile{Name: " Ann Lee "}, onlyActive(noop)},
		{"change email", customer.ChangeEmail{Email: email(t, "ann@work.example")},
			onlyActive(ok(customer.CustomerEmailChanged{Email: email(t, "ann@work.example")}))},
		{"change email unchanged", customer.ChangeEmail{Email: email(t, "ANN@example.com")}, onlyActive(noop)},
		{"change phone", customer.ChangePhone{Phone: phone(t, "+4930123456")},
			onlyActive(ok(customer.CustomerPhoneChanged{Phone: phone(t, "+4930123456")}))},
		{"change phone unchanged", customer.ChangePhone{Phone: phone(t, "+49 170 1234567")}, onlyActive(noop)},
		{"remove phone", customer.ChangePhone{}, onlyActive(ok(customer.CustomerPhoneChanged{}))},
		{"add address", customer.AddAddress{AddressID: workID, Address: work},
			onlyActive(ok(customer.CustomerAddressAdded{AddressID: workID, Address: work}))},
		{"add address again", customer.AddAddress{AddressID: homeID, Address: home}, onlyActive(noop)},
		{"add other address under a used id", customer.AddAddress{AddressID: homeID, Address: work},
			onlyActive(conflict("customer.address_exists"))},
		{"update address", customer.UpdateAddress{AddressID: homeID, Address: work},
			onlyActive(ok(customer.CustomerAddressUpdated{AddressID: homeID, Address: work}))},
		{"update address unchanged", customer.UpdateAddress{AddressID: homeID, Address: home}, onlyActive(noop)},
		{"update unknown address", customer.UpdateAddress{AddressID: unknownID, Address: home},
			onlyActive(outcome{kind: notFoundErr, code: "customer.address_not_found"})},
		{"remove address", customer.RemoveAddress{AddressID: homeID},
			onlyActive(ok(customer.CustomerAddressRemoved{AddressID: homeID}))},
		{"remove unknown address", customer.RemoveAddress{AddressID: unknownID}, onlyActive(noop)},
		{"upgrade tier", customer.UpgradeTier{Tier: value.CustomerTierPlatinum},
			onlyActive(ok(customer.CustomerTierUpgraded{From: value.CustomerTierGold, To: value.CustomerTierPlatinum}))},
		{"upgrade to the same tier", customer.UpgradeTier{Tier: value.CustomerTierGold}, onlyActive(noop)},
		{"downgrade tier", customer.UpgradeTier{Tier: value.CustomerTierSilver},
			onlyActive(outcome{kind: ruleErr, code: "customer.tier_downgrade"})},
		{"suspend", customer.SuspendCustomer{Reason: "unpaid invoice"}, map[string]outcome{
			"none": notFound, "active": ok(customer.CustomerSuspended{Reason: "unpaid invoice"}),
			"suspended": conflict("customer.already_suspended"), "deactivated": deactivated,
		}},
		{"suspend again", customer.SuspendCustomer{Reason: "chargeback"}, map[string]outcome{
			"none": notFound, "active": ok(customer.CustomerSuspended{Reason: "chargeback"}),
			"suspended": noop, "deactivated": deactivated,
		}},
		{"reactivate", customer.ReactivateCustomer{}, map[string]outcome{
			"none": notFound, "active": noop, "suspended": ok(customer.CustomerReactivated{}), "deactivated": deactivated,
		}},
		{"deactivate", customer.DeactivateCustomer{Reason: "fraud"}, map[string]outcome{
			"none": notFound, "active": ok(customer.CustomerDeactivated{Reason: "fraud"}),
			"suspended": ok(customer.CustomerDeactivated{Reason: "fraud"}), "deactivated": conflict("customer.already_deactivated"),
		}},
		{"deactivate again", customer.DeactivateCustomer{Reason: "erasure request"}, map[string]outcome{
			"none": notFound, "active": ok(customer.CustomerDeactivated{Reason: "erasure request"}),
			"suspended": ok(customer.CustomerDeactivated{Reason: "erasure request"}), "deactivated": noop,
		}},
	}
	for _, tt := range tests {
		require.Len(t, tt.want, len(states), tt.name)
		for stateName, want := range tt.want {
			t.Run(tt.name+"/"+stateName, func(t *testing.T) {
				past, known := states[stateName]
				require.True(t, known)
				got, err := customer.Decide(customer.Fold(past), tt.cmd)
				if want.kind != noError {
					requireErr(t, err, want.kind, want.code)
					require.Nil(t, got)
					return
				}
				require.NoError(t, err)
				require.Equal(t, want.events, got)
			})
		}
	}
}

func TestDecideValidation(t *testing.T) {
	active := customer.Fold(newHistory(t).active)
	valid := customer.RegisterCustomer{CustomerID: customerID, Name: "Ann", Email: email(t, "ann@example.com")}
	with := func(edit func(*customer.RegisterCustomer)) customer.RegisterCustomer {
		c := valid
		edit(&c)
		return c
	}
	home := address(t, "Unter den Linden 1")

	tests := []struct {
		name        string
		s           customer.State
		cmd         customer.Command
		code, field string
	}{
		{"bad id", customer.State{}, with(func(c *customer.RegisterCustomer) { c.CustomerID = "42" }), "customer.id_invalid", "customer_id"},
		{"upper-case id", customer.State{}, with(func(c *customer.RegisterCustomer) { c.CustomerID = strings.ToUpper(customerID) }),
			"customer.id_invalid", "customer_id"},
		{"name missing", customer.State{}, with(func(c *customer.RegisterCustomer) { c.Name = " " }), "customer.name_required", "name"},
		{"name too long", customer.State{}, with(func(c *customer.RegisterCustomer) { c.Name = strings.Repeat("n", 201) }),
			"customer.name_too_long", "name"},
		{"name control", customer.State{}, with(func(c *customer.RegisterCustomer) { c.Name = "Ann\x00" }), "customer.name_invalid", "name"},
		{"name newline", customer.State{}, with(func(c *customer.RegisterCustomer) { c.Name = "Ann\nLee" }), "customer.name_invalid", "name"},
		{"email missing", customer.State{}, with(func(c *customer.RegisterCustomer) { c.Email = value.Email{} }),
			"customer.email_required", "email"},
		{"register validates before the existence conflict", active, with(func(c *customer.RegisterCustomer) { c.Name = "" }),
			"customer.name_required", "name"},
		{"profile name missing", active, customer.UpdateProfile{}, "customer.name_required", "name"},
		{"profile name too long", active, customer.UpdateProfile{Name: strings.Repeat("é", 201)}, "customer.name_too_long", "name"},
		{"change to no email", active, customer.ChangeEmail{}, "customer.email_required", "email"},
		{"add address bad id", active, customer.AddAddress{AddressID: "home", Address: home}, "customer.address_id_invalid", "address_id"},
		{"add no address", active, customer.AddAddress{AddressID: workID}, "customer.address_required", "address"},
		{"update address bad id", active, customer.UpdateAddress{AddressID: "", Address: home}, "customer.address_id_invalid", "address_id"},
		{"update to no address", active, customer.UpdateAddress{AddressID: homeID}, "customer.address_required", "address"},
		{"remove address bad id", active, customer.RemoveAddress{AddressID: strings.ToUpper(homeID)},
			"customer.address_id_invalid", "address_id"},
		{"no tier", active, customer.UpgradeTier{}, "customer.tier_invalid", "tier"},
		{"unknown tier", active, customer.UpgradeTier{Tier: 9}, "customer.tier_invalid", "tier"},
		{"suspend without reason", active, customer.SuspendCustomer{}, "customer.reason_required", "reason"},
		{"suspend reason too long", active, customer.SuspendCustomer{Reason: strings.Repeat("r", 501)}, "customer.reason_too_long", "reason"},
		{"suspend reason control", active, customer.SuspendCustomer{Reason: "a\u2029b"}, "customer.reason_invalid", "reason"},
		{"deactivate without reason", active, customer.DeactivateCustomer{Reason: "\t"}, "customer.reason_required", "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := customer.Decide(tt.s, tt.cmd)
			requireErr(t, err, ruleErr, tt.code)
			require.Equal(t, tt.field, domain.FieldOf(err))
			require.Nil(t, got)
		})
	}

	t.Run("name is trimmed and counted in characters", func(t *testing.T) {
		name := strings.Repeat("ж", 200)
		got, err := customer.Decide(customer.State{}, with(func(c *customer.RegisterCustomer) { c.Name = "  " + name + "\n" }))
		require.NoError(t, err)
		require.Equal(t, name, got[0].(customer.CustomerRegistered).Name)
	})
	t.Run("register with a phone", func(t *testing.T) {
		got, err := customer.Decide(customer.State{}, with(func(c *customer.RegisterCustomer) { c.Phone = phone(t, "+14155550100") }))
		require.NoError(t, err)
		require.Equal(t, phone(t, "+14155550100"), got[0].(customer.CustomerRegistered).Phone)
	})
	t.Run("a suspended customer is refused before the no-op check", func(t *testing.T) {
		s := customer.Fold(newHistory(t).suspended)
		_, err := customer.Decide(s, customer.UpdateProfile{Name: s.Name})
		requireErr(t, err, conflictErr, "customer.suspended")
	})
}

func TestDecideAddressLimit(t *testing.T) {
	events := clone(newHistory(t).active) // holds one address already
	ids := []string{homeID}
	for i := 2; i <= customer.MaxAddresses; i++ {
		id := fmt.Sprintf("0190f0a8-3c1b-7cc2-9d6e-%012d", i)
		ids = append(ids, id)
		events = append(events, customer.CustomerAddressAdded{AddressID: id, Address: address(t, fmt.Sprintf("Street %d", i))})
	}
	full := customer.Fold(events)
	require.Len(t, full.Addresses, customer.MaxAddresses)

	_, err := customer.Decide(full, customer.AddAddress{AddressID: unknownID, Address: address(t, "One too many")})
	requireErr(t, err, ruleErr, "customer.too_many_addresses")

	got, err := customer.Decide(full, customer.AddAddress{AddressID: ids[19], Address: address(t, "Street 20")})
	require.NoError(t, err)
	require.Empty(t, got, "a retry of the 20th address is a no-op, not a limit error")

	got, err = customer.Decide(full, customer.UpdateAddress{AddressID: ids[5], Address: address(t, "Moved")})
	require.NoError(t, err)
	require.Len(t, got, 1)

	removed := customer.ApplyAll(full, []customer.Event{customer.CustomerAddressRemoved{AddressID: ids[3]}})
	got, err = customer.Decide(removed, customer.AddAddress{AddressID: unknownID, Address: address(t, "Now it fits")})
	require.NoError(t, err)
	require.Equal(t, []customer.Event{customer.CustomerAddressAdded{AddressID: unknownID, Address: address(t, "Now it fits")}}, got)
}

// unsupportedCommand is a command only a test can build: Command's marker
// method is unexported, so embedding is the only way in.
type unsupportedCommand struct{ customer.ReactivateCustomer }

func TestDecideRefusesUnknownCommands(t *testing.T) {
	s := customer.Fold(newHistory(t).active)
	for name, cmd := range map[string]customer.Command{
		"nil": nil, "pointer": &customer.ReactivateCustomer{}, "embedded": unsupportedCommand{},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := customer.Decide(s, cmd)
			require.Error(t, err)
			require.Nil(t, got)
			require.Empty(t, domain.CodeOf(err), "a programming error is not a domain error")
		})
	}
}

func TestCommandTypes(t *testing.T) {
	for want, cmd := range map[string]customer.Command{
		"RegisterCustomer": customer.RegisterCustomer{}, "UpdateProfile": customer.UpdateProfile{},
		"ChangeEmail": customer.ChangeEmail{}, "ChangePhone": customer.ChangePhone{},
		"AddAddress": customer.AddAddress{}, "UpdateAddress": customer.UpdateAddress{},
		"RemoveAddress": customer.RemoveAddress{}, "UpgradeTier": customer.UpgradeTier{},
		"SuspendCustomer": customer.SuspendCustomer{}, "ReactivateCustomer": customer.ReactivateCustomer{},
		"DeactivateCustomer": customer.DeactivateCustomer{},
	} {
		require.Equal(t, want, cmd.CommandType())
	}
	require.Equal(t, "customer", customer.AggregateType)
}

// TestForget: a forget is allowed in every status and recorded once; a
// forgotten customer holds no personal data and refuses every other
// command, a re-registration of its id included.
func TestForget(t *testing.T) {
	h := newHistory(t)
	_, err := customer.Decide(customer.State{}, customer.ForgetCustomer{})
	requireErr(t, err, notFoundErr, "customer.not_found")

	for name, history := range map[string][]customer.Event{"active": h.active, "suspended": h.suspended, "deactivated": h.deactivated} {
		t.Run(name, func(t *testing.T) {
			s := customer.Fold(history)
			events, err := customer.Decide(s, customer.ForgetCustomer{})
			require.NoError(t, err)
			require.Equal(t, []customer.Event{customer.CustomerForgotten{}}, events)
			forgotten := customer.ApplyAll(s, events)
			require.Equal(t, customer.State{ID: customerID, Tier: s.Tier, Status: s.Status, StatusReason: s.StatusReason,
				Forgotten: true, Version: s.Version + 1}, forgotten)

			again, err := customer.Decide(forgotten, customer.ForgetCustomer{})
			require.NoError(t, err, "a retried forget is a no-op")
			require.Empty(t, again)

			for _, cmd := range []customer.Command{
				customer.RegisterCustomer{CustomerID: customerID, Name: "Ann Lee", Email: email(t, "ann@example.com")},
				customer.UpdateProfile{Name: "Ann"}, customer.ChangeEmail{Email: email(t, "a@b.org")},
				customer.ChangePhone{}, customer.AddAddress{AddressID: workID, Address: address(t, "x")},
				customer.UpdateAddress{AddressID: homeID, Address: address(t, "x")}, customer.RemoveAddress{AddressID: homeID},
				customer.UpgradeTier{Tier: value.CustomerTierPlatinum}, customer.SuspendCustomer{Reason: "r"},
				customer.ReactivateCustomer{}, customer.DeactivateCustomer{Reason: "r"},
			} {
				events, err := customer.Decide(forgotten, cmd)
				requireErr(t, err, conflictErr, customer.CodeForgotten)
				require.True(t, customer.IsForgotten(err))
				require.Nil(t, events, "%T", cmd)
			}
		})
	}
}
