package customer_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// commandGen draws commands from small pools, so that repeats, no-ops and
// conflicts happen as often as fresh changes. Valid payloads are drawn more
// often than invalid ones so that customers get somewhere.
type commandGen struct {
	r         *rand.Rand
	emails    []value.Email
	phones    []value.PhoneNumber
	addresses []value.Address
	ids       []string
}

func newCommandGen(t testing.TB, seed uint64) commandGen {
	g := commandGen{
		r:         rand.New(rand.NewPCG(seed, 0xc0ffee)),
		emails:    []value.Email{email(t, "ann@example.com"), email(t, "ann@work.example")},
		phones:    []value.PhoneNumber{phone(t, "+491701234567"), phone(t, "+4930123456"), {}},
		addresses: []value.Address{address(t, "A 1"), address(t, "B 2"), address(t, "C 3")},
		ids:       []string{homeID, workID, unknownID},
	}
	// Enough distinct ids to reach the 20-address limit now and then.
	for i := range 22 {
		g.ids = append(g.ids, "0190f0a8-3c1b-7cc2-9d6e-0000000000"+string(rune('a'+i%6))+string(rune('0'+i/6)))
	}
	return g
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// often returns good most of the time and bad otherwise.
func often[T any](r *rand.Rand, good, bad T) T {
	if r.IntN(10) < 8 {
		return good
	}
	return bad
}

func (g commandGen) next() customer.Command {
	r := g.r
	switch r.IntN(12) {
	case 0:
		return customer.RegisterCustomer{
			CustomerID: often(r, customerID, "x"),
			Name:       often(r, pick(r, "Ann", " Ann "), ""),
			Email:      often(r, pick(r, g.emails...), value.Email{}),
			Phone:      pick(r, g.phones...),
		}
	case 1:
		return customer.UpdateProfile{Name: often(r, pick(r, "Ann", "Bea"), "\x00")}
	case 2:
		return customer.ChangeEmail{Email: often(r, pick(r, g.emails...), value.Email{})}
	case 3:
		return customer.ChangePhone{Phone: pick(r, g.phones...)}
	case 4, 5:
		return customer.AddAddress{AddressID: often(r, pick(r, g.ids...), "home"), Address: pick(r, g.addresses...)}
	case 6:
		return customer.UpdateAddress{
			AddressID: often(r, pick(r, g.ids[:3]...), "home"),
			Address:   often(r, pick(r, g.addresses...), value.Address{}),
		}
	case 7:
		return customer.RemoveAddress{AddressID: pick(r, g.ids...)}
	case 8:
		return customer.UpgradeTier{Tier: value.CustomerTier(r.IntN(6))}
	case 9:
		return customer.SuspendCustomer{Reason: often(r, pick(r, "chargeback", "spam"), "")}
	case 10:
		return customer.ReactivateCustomer{}
	default:
		// Rare, because they end the run's interesting part.
		switch r.IntN(12) {
		case 0, 1, 2:
			return customer.DeactivateCustomer{Reason: pick(r, "closed", "fraud", "")}
		case 3:
			return customer.ForgetCustomer{}
		}
		return customer.ReactivateCustomer{}
	}
}

// TestDecideApplyProperties drives random command sequences and checks,
// after every accepted command, what the command-service relies on:
//   - folding the whole history equals applying the new events to the
//     state Decide saw (so snapshots plus tail events are correct);
//   - Version equals the number of events;
//   - deciding the same command again emits nothing (a retry is safe);
//   - the state survives its JSON encoding, the snapshot shape (events
//     are stored as protojson by pkg/eventcodec, which has its own tests);
//   - the customer's invariants hold: at most 20 addresses with unique ids,
//     tiers never go down, DEACTIVATED is final but for a forget, and a
//     forgotten customer is final and holds no personal data.
//
// Refused commands must be domain errors with a code and change nothing.
func TestDecideApplyProperties(t *testing.T) {
	const (
		runs  = 500
		steps = 60
	)
	accepted, refused, noops := 0, 0, 0
	seen := map[string]int{}
	for run := range runs {
		g := newCommandGen(t, uint64(run))
		var (
			s   customer.State
			all []customer.Event
		)
		for step := range steps {
			cmd := g.next()
			events, err := customer.Decide(s, cmd)
			if err != nil {
				refused++
				require.Nil(t, events)
				require.NotEmpty(t, domain.CodeOf(err), "run %d step %d %#v: %v", run, step, cmd, err)
				continue
			}
			if len(events) == 0 {
				noops++
				continue
			}
			accepted++
			next := customer.ApplyAll(s, events)
			all = append(all, events...)
			require.Equal(t, customer.Fold(all), next, "run %d step %d", run, step)
			require.Equal(t, int64(len(all)), next.Version)

			again, err := customer.Decide(next, cmd)
			if err == nil {
				require.Empty(t, again, "retrying %#v must not emit again", cmd)
			}

			for _, e := range events {
				seen[e.EventType()]++
			}
			b, err := json.Marshal(next)
			require.NoError(t, err)
			var snapshot customer.State
			require.NoError(t, json.Unmarshal(b, &snapshot))
			require.Equal(t, next, snapshot)

			require.True(t, next.Exists())
			require.True(t, next.Status.IsValid())
			require.True(t, next.Tier.IsValid())
			require.False(t, next.Tier.Less(s.Tier), "tiers never go down")
			require.False(t, s.Forgotten, "nothing happens after a forget")
			if next.Forgotten {
				require.Equal(t, customer.State{ID: s.ID, Tier: s.Tier, Status: s.Status, StatusReason: s.StatusReason,
					Forgotten: true, Version: next.Version}, next, "a forgotten customer holds no personal data")
				s = next
				continue
			}
			require.False(t, s.Status == value.CustomerStatusDeactivated, "nothing but a forget happens after deactivation")
			require.False(t, next.Email.IsZero())
			require.NotEmpty(t, next.Name)
			require.LessOrEqual(t, len(next.Addresses), customer.MaxAddresses)
			ids := map[string]bool{}
			for _, a := range next.Addresses {
				require.False(t, ids[a.ID], "address id %s twice", a.ID)
				ids[a.ID] = true
			}
			s = next
		}
	}
	// Guard against a generator that never reaches the interesting paths.
	require.Greater(t, accepted, runs*5)
	require.Greater(t, refused, runs)
	require.Greater(t, noops, runs)
	for _, name := range customer.EventTypes() {
		require.Positive(t, seen[name], "no run produced %s", name)
	}
	t.Logf("accepted %d, refused %d, no-ops %d, events %v", accepted, refused, noops, seen)
}

// TestAddressLimitIsReached makes sure the property test's id pool can fill
// a customer up, so the limit rule is exercised there too.
func TestAddressLimitIsReached(t *testing.T) {
	g := newCommandGen(t, 1)
	s := customer.Fold(newHistory(t).active[:1])
	for _, id := range g.ids {
		events, err := customer.Decide(s, customer.AddAddress{AddressID: id, Address: g.addresses[0]})
		if err != nil {
			requireErr(t, err, ruleErr, "customer.too_many_addresses")
			require.Len(t, s.Addresses, customer.MaxAddresses)
			return
		}
		s = customer.ApplyAll(s, events)
	}
	t.Fatal("the id pool is too small to reach the address limit")
}
