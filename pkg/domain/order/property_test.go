package order_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// commandGen draws commands from small pools, so that repeats, no-ops and
// conflicts happen as often as fresh changes. Valid payloads are drawn more
// often than invalid ones so that orders get through their lifecycle.
type commandGen struct {
	r    *rand.Rand
	good [][]value.OrderItem
	bad  [][]value.OrderItem
}

func newCommandGen(t testing.TB, seed uint64) commandGen {
	return commandGen{
		r: rand.New(rand.NewPCG(seed, 0x5eed)),
		good: [][]value.OrderItem{
			items(item(t, "A", 1, 100, "USD")),
			items(item(t, "A", 2, 100, "USD"), item(t, "B", 1, 250, "USD")),
			items(item(t, "B", 1, 250, "USD"), item(t, "A", 2, 100, "USD")),
			items(item(t, "C", 3, 0, "USD")),
		},
		bad: [][]value.OrderItem{
			items(item(t, "A", 1, 100, "EUR")), // valid alone, but not in a USD order
			items(item(t, "A", 1, 100, "USD"), item(t, "A", 1, 100, "USD")),
			items(item(t, "A", 1, 100, "USD"), item(t, "B", 1, 100, "JPY")),
			nil,
		},
	}
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// often returns good most of the time and bad otherwise.
func often[T any](r *rand.Rand, good, bad T) T {
	if r.IntN(10) < 8 {
		return good
	}
	return bad
}

func (g commandGen) items() []value.OrderItem {
	return often(g.r, pick(g.r, g.good...), pick(g.r, g.bad...))
}

func (g commandGen) next() order.Command {
	r := g.r
	switch r.IntN(6) {
	case 0:
		return order.CreateOrder{
			OrderID:    often(r, orderID, "not-a-uuid"),
			CustomerID: often(r, customerID, ""),
			Items:      g.items(),
		}
	case 1:
		return order.UpdateItems{Items: g.items()}
	case 2:
		return order.ConfirmOrder{}
	case 3:
		return order.ShipOrder{
			Carrier:        often(r, pick(r, "DHL", "UPS", " DHL "), ""),
			TrackingNumber: often(r, pick(r, "T1", "T2"), "\n"),
		}
	case 4:
		return order.DeliverOrder{Signature: often(r, pick(r, "", "Ann", "Bob"), "\x00")}
	default:
		return order.CancelOrder{
			Reason:      often(r, pick(r, "late", "fraud"), ""),
			CancelledBy: often(r, pick(r, "ann", "bob"), ""),
		}
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
//   - the order's invariants hold: items non-empty, one currency.
//
// Refused commands must be domain errors with a code and change nothing.
func TestDecideApplyProperties(t *testing.T) {
	const (
		runs  = 1000
		steps = 20
	)
	accepted, refused, noops := 0, 0, 0
	seen := map[string]int{}
	for run := range runs {
		g := newCommandGen(t, uint64(run))
		var (
			s   order.State
			all []order.Event
		)
		for step := range steps {
			cmd := g.next()
			events, err := order.Decide(s, cmd)
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
			next := order.ApplyAll(s, events)
			all = append(all, events...)
			require.Equal(t, order.Fold(all), next, "run %d step %d", run, step)
			require.Equal(t, int64(len(all)), next.Version)

			again, err := order.Decide(next, cmd)
			if err == nil {
				require.Empty(t, again, "retrying %#v must not emit again", cmd)
			}

			for _, e := range events {
				seen[e.EventType()]++
			}
			b, err := json.Marshal(next)
			require.NoError(t, err)
			var snapshot order.State
			require.NoError(t, json.Unmarshal(b, &snapshot))
			require.Equal(t, next, snapshot)

			require.True(t, next.Exists())
			require.True(t, next.Status.IsValid())
			require.NotEmpty(t, next.Items)
			for _, it := range next.Items {
				require.Equal(t, next.Currency, it.Currency())
			}
			require.False(t, next.Total().IsZero())
			s = next
		}
	}
	// Guard against a generator that never reaches the interesting paths.
	require.Greater(t, accepted, runs*3/2)
	for _, name := range order.EventTypes() {
		require.Positive(t, seen[name], "no run produced %s", name)
	}
	require.Greater(t, refused, runs)
	require.Greater(t, noops, runs/4)
	t.Logf("accepted %d, refused %d, no-ops %d, events %v", accepted, refused, noops, seen)
}
