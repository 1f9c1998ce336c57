// Package loadgen drives valid commands at orders and customers through
// the repositories, for the tests and benchmarks that need a realistic
// stream of events: every aggregate moves through its lifecycle (orders are
// created, their items changed, confirmed, shipped, delivered or
// cancelled; customers registered, their profile, contacts, addresses,
// tier and status changed).
package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/repository"
)

// Config shapes a load.
type Config struct {
	Commands   int // commands in all
	Aggregates int // aggregates they go to; a quarter are customers
	Workers    int // concurrent writers; each owns its aggregates
	Seed       uint64
	// Pause, when set, is called before each command (to pace a load or
	// to stop it part-way).
	Pause func(ctx context.Context) error
}

// Result counts what was committed.
type Result struct {
	Commands atomic.Int64 // commands committed
	Created  atomic.Int64 // aggregates created
}

// Run sends cfg.Commands commands and returns when all are committed.
func Run(ctx context.Context, cfg Config, orders *repository.Orders, customers *repository.Customers) (*Result, error) {
	if cfg.Workers < 1 || cfg.Aggregates < cfg.Workers || cfg.Commands < cfg.Aggregates {
		return nil, fmt.Errorf("loadgen: need commands ≥ aggregates ≥ workers ≥ 1, got %d, %d, %d", cfg.Commands, cfg.Aggregates, cfg.Workers)
	}
	res := &Result{}
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	for w := range cfg.Workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			var mine []*aggregate
			for i := w; i < cfg.Aggregates; i += cfg.Workers {
				mine = append(mine, &aggregate{id: gocql.UUID(uuid.New()), customer: i%4 == 0})
			}
			budget := cfg.Commands / cfg.Workers
			if w < cfg.Commands%cfg.Workers {
				budget++
			}
			// Every aggregate gets its first command; the rest go at
			// random to aggregates that can still take one.
			for n := 0; n < budget; n++ {
				var a *aggregate
				if n < len(mine) {
					a = mine[n]
				} else {
					a = mine[rng.IntN(len(mine))]
				}
				if cfg.Pause != nil {
					if err := cfg.Pause(ctx); err != nil {
						errs <- err
						return
					}
				}
				if a.steps == 0 || a.status == "done" || a.status == "deactivated" {
					res.Created.Add(1)
				}
				if err := a.next(ctx, rng, orders, customers); err != nil {
					errs <- fmt.Errorf("aggregate %s: %w", a.id, err)
					return
				}
				res.Commands.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	return res, nil
}

type aggregate struct {
	id       gocql.UUID
	customer bool
	steps    int
	status   string // order: created, confirmed, shipped, done; customer: active, suspended, deactivated
	tier     value.CustomerTier
	address  []string
}

var eur, _ = value.NewCurrency("EUR")

func items(rng *rand.Rand) []value.OrderItem {
	out := make([]value.OrderItem, 1+rng.IntN(3))
	for i := range out {
		price, _ := value.NewMoney(int64(100+rng.IntN(10_000)), eur)
		out[i], _ = value.NewOrderItem(fmt.Sprintf("sku-%d-%d", i, rng.IntN(50)), int64(1+rng.IntN(5)), price)
	}
	return out
}

func meta() eventstore.Metadata {
	return eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "loadgen", Now: time.Now()}
}

// next sends the aggregate's next valid command.
func (a *aggregate) next(ctx context.Context, rng *rand.Rand, orders *repository.Orders, customers *repository.Customers) error {
	defer func() { a.steps++ }()
	if a.customer {
		_, err := customers.Handle(ctx, a.id, a.customerCommand(rng), meta())
		return err
	}
	_, err := orders.Handle(ctx, a.id, a.orderCommand(rng), meta())
	return err
}

func (a *aggregate) orderCommand(rng *rand.Rand) order.Command {
	if a.steps == 0 {
		a.status = "created"
		return order.CreateOrder{OrderID: a.id.String(), CustomerID: uuid.NewString(), Items: items(rng)}
	}
	switch a.status {
	case "created":
		switch r := rng.IntN(10); {
		case r < 5:
			return order.UpdateItems{Items: items(rng)}
		case r < 9:
			a.status = "confirmed"
			return order.ConfirmOrder{}
		default:
			a.status = "done"
			return order.CancelOrder{Reason: "changed mind", CancelledBy: "customer"}
		}
	case "confirmed":
		if rng.IntN(10) == 0 {
			a.status = "done"
			return order.CancelOrder{Reason: "out of stock", CancelledBy: "shop"}
		}
		a.status = "shipped"
		return order.ShipOrder{Carrier: "DHL", TrackingNumber: fmt.Sprintf("T%d", rng.IntN(1e6))}
	case "shipped":
		a.status = "done"
		if rng.IntN(10) == 0 {
			return order.CancelOrder{Reason: "lost", CancelledBy: "carrier"}
		}
		return order.DeliverOrder{Signature: "J. Doe"}
	}
	// A finished order takes no more commands: a new order takes its place.
	a.id, a.steps, a.status = gocql.UUID(uuid.New()), 0, ""
	return a.orderCommand(rng)
}

func (a *aggregate) customerCommand(rng *rand.Rand) customer.Command {
	if a.steps == 0 {
		a.status, a.tier = "active", value.CustomerTierBronze
		email, _ := value.NewEmail(fmt.Sprintf("c%d@example.com", rng.IntN(1e9)))
		phone, _ := value.NewPhoneNumber(fmt.Sprintf("+4930%07d", rng.IntN(1e7)))
		return customer.RegisterCustomer{CustomerID: a.id.String(), Name: "Customer", Email: email, Phone: phone}
	}
	switch a.status {
	case "suspended":
		a.status = "active"
		return customer.ReactivateCustomer{}
	case "deactivated": // closed for good: a new customer takes its place
		a.id, a.steps, a.status, a.address = gocql.UUID(uuid.New()), 0, "", nil
		return a.customerCommand(rng)
	}
	addr := func() value.Address {
		ad, _ := value.NewAddress(value.AddressFields{Label: "home", Line1: fmt.Sprintf("%d Main St", 1+rng.IntN(999)), City: "Berlin", PostalCode: "10115", Country: "DE"})
		return ad
	}
	switch r := rng.IntN(20); {
	case r < 4:
		return customer.UpdateProfile{Name: fmt.Sprintf("Customer %d", rng.IntN(1e6))}
	case r < 6:
		email, _ := value.NewEmail(fmt.Sprintf("c%d@example.com", rng.IntN(1e9)))
		return customer.ChangeEmail{Email: email}
	case r < 8:
		phone, _ := value.NewPhoneNumber(fmt.Sprintf("+4930%07d", rng.IntN(1e7)))
		return customer.ChangePhone{Phone: phone}
	case r < 12 || len(a.address) == 0:
		id := uuid.NewString()
		a.address = append(a.address, id)
		return customer.AddAddress{AddressID: id, Address: addr()}
	case r < 14:
		return customer.UpdateAddress{AddressID: a.address[rng.IntN(len(a.address))], Address: addr()}
	case r < 16:
		i := rng.IntN(len(a.address))
		id := a.address[i]
		a.address = append(a.address[:i], a.address[i+1:]...)
		return customer.RemoveAddress{AddressID: id}
	case r < 18 && a.tier < value.CustomerTierPlatinum:
		a.tier++
		return customer.UpgradeTier{Tier: a.tier}
	case r < 19:
		a.status = "suspended"
		return customer.SuspendCustomer{Reason: "payment overdue"}
	default:
		if rng.IntN(4) == 0 {
			a.status = "deactivated"
			return customer.DeactivateCustomer{Reason: "closed"}
		}
		return customer.UpdateProfile{Name: fmt.Sprintf("Customer %d", rng.IntN(1e6))}
	}
}
