package repository

import (
	"errors"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
)

// CacheConfig sizes the in-process caches of folded aggregate states
// (eventstore.StateCache, issue 18): a command on an aggregate this process
// recently loaded or wrote decides on the cached state instead of reading
// snapshots and events again. Correct with any number of processes: a
// stale state can only lose the commit's version check, and is then
// dropped and reloaded.
type CacheConfig struct {
	CacheSize int           `mapstructure:"cache_size" help:"aggregates whose folded state each repository (orders, customers) keeps in memory; 0 switches the state cache off"`
	CacheTTL  time.Duration `mapstructure:"cache_ttl" help:"how long a cached state is used; also how long a forgotten customer's order may keep an opened delivery signature in another process's memory"`
}

// DefaultCacheConfig keeps 10000 states of each type for a minute (the
// same bound as personal.cache_ttl).
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{CacheSize: 10_000, CacheTTL: time.Minute}
}

// Validate checks every key.
func (c CacheConfig) Validate() error {
	var errs []error
	if c.CacheSize < 0 || c.CacheSize > 10_000_000 {
		errs = append(errs, config.Errorf("cache_size", "must be 0..10000000, got %d", c.CacheSize))
	}
	if c.CacheSize > 0 && (c.CacheTTL <= 0 || c.CacheTTL > time.Hour) {
		errs = append(errs, config.Errorf("cache_ttl", "must be positive and at most 1h, got %s", c.CacheTTL))
	}
	return errors.Join(errs...)
}

// UseStateCaches gives the order and customer repositories a state cache
// each (none when cfg.CacheSize is 0). versions reads an aggregate's
// stored version for Current (the *eventstore.Store under any wrapper).
func UseStateCaches(orders *Orders, customers *Customers, cfg CacheConfig, versions eventstore.VersionReader, reg prometheus.Registerer) error {
	if cfg.CacheSize == 0 {
		return nil
	}
	oc, err := eventstore.NewStateCache[order.State](order.AggregateType, cfg.CacheSize, cfg.CacheTTL, versions, reg)
	if err != nil {
		return err
	}
	cc, err := eventstore.NewStateCache[customer.State](customer.AggregateType, cfg.CacheSize, cfg.CacheTTL, versions, reg)
	if err != nil {
		return err
	}
	// An order's opened delivery signature is never cached: it would
	// outlive a forget of the customer in every process that held it.
	// Delivered orders take few commands after, so this costs little.
	oc.Admit(func(s order.State) bool { return s.Signature == "" || s.Signature == personal.Redacted })
	orders.UseStateCache(oc)
	customers.UseStateCache(cc)
	return nil
}

// ForgetCustomer drops what this process's state caches hold of a
// customer who was just forgotten: their own state, and the states of
// their orders. (Neither holds personal data by then: the customer's
// state after CustomerForgotten has none, and an order's opened delivery
// signature is never cached. They are dropped all the same, so that
// nothing this process decides about them next rests on a state from
// before the forget.)
func ForgetCustomer(orders *Orders, customers *Customers, id gocql.UUID) {
	if c := customers.StateCache(); c != nil {
		c.Evict(id)
	}
	if c := orders.StateCache(); c != nil {
		owner := id.String()
		c.EvictWhere(func(s order.State) bool { return s.CustomerID == owner })
	}
}
