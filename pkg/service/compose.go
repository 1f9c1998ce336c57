package service

import (
	"errors"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
)

// StoreConfig is the configuration of a service that works on the CQL
// database only (command-service, query-service, dlq-service).
type StoreConfig struct {
	Base `mapstructure:",squash"`
	CQL  cql.Config `mapstructure:"cql"`
}

// DefaultStoreConfig has the admin server on adminAddr and a local node.
func DefaultStoreConfig(adminAddr string) StoreConfig {
	return StoreConfig{Base: DefaultBase(adminAddr), CQL: cql.DefaultConfig()}
}

// Validate checks the base and the CQL configuration.
func (c StoreConfig) Validate() error {
	return errors.Join(c.Base.Validate(), config.Nest("cql", c.CQL.Validate()))
}

// StreamConfig is the configuration of a service that reads the event
// store and works on the broker (cdc-relay and the projectors).
type StreamConfig struct {
	StoreConfig `mapstructure:",squash"`
	Kafka       kafka.Config `mapstructure:"kafka"`
	// EventStore tunes the event store the service reads (consistency
	// levels, page size), under the key command-service and query-service
	// use for theirs.
	EventStore eventstore.Config `mapstructure:"eventstore"`
}

// DefaultStreamConfig has the admin server on adminAddr, a local node and
// a local broker.
func DefaultStreamConfig(adminAddr string) StreamConfig {
	return StreamConfig{StoreConfig: DefaultStoreConfig(adminAddr), Kafka: kafka.DefaultConfig(), EventStore: eventstore.DefaultConfig()}
}

// Validate checks the base, CQL, Kafka and event store configuration.
func (c StreamConfig) Validate() error {
	return errors.Join(c.StoreConfig.Validate(), config.Nest("kafka", c.Kafka.Validate()), config.Nest("eventstore", c.EventStore.Validate()))
}
