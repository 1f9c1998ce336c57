// Package repository wires the Order and Customer aggregates to the event
// store: load, decide, commit, with their codecs and the shared upcasters.
// Sealing, a store between the repositories and the event store, keeps
// customers' personal data sealed in what is stored (personal.go).
package repository

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Orders is the repository of the Order aggregate.
type Orders = eventstore.Repository[order.State, order.Command, order.Event]

// Customers is the repository of the Customer aggregate.
type Customers = eventstore.Repository[customer.State, customer.Command, customer.Event]

// NewOrders builds the order repository.
func NewOrders(store eventstore.RepositoryStore, up *eventstore.Upcasters, cfg eventstore.RepositoryConfig, logger zerolog.Logger, reg prometheus.Registerer) (*Orders, error) {
	agg := eventstore.Aggregate[order.State, order.Command, order.Event]{Type: order.AggregateType, Decide: order.Decide, Apply: order.Apply}
	return eventstore.NewRepository(store, agg, eventcodec.OrderCodec{}, up, cfg, logger, reg)
}

// NewCustomers builds the customer repository.
func NewCustomers(store eventstore.RepositoryStore, up *eventstore.Upcasters, cfg eventstore.RepositoryConfig, logger zerolog.Logger, reg prometheus.Registerer) (*Customers, error) {
	agg := eventstore.Aggregate[customer.State, customer.Command, customer.Event]{Type: customer.AggregateType, Decide: customer.Decide, Apply: customer.Apply}
	return eventstore.NewRepository(store, agg, eventcodec.CustomerCodec{}, up, cfg, logger, reg)
}
