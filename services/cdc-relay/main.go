// Command cdc-relay turns committed events into Redpanda records, in order
// per aggregate, never lost. This build runs the scan source (token-range
// scans of event_store's static columns), which works on every CQL
// database, with one active replica per source held by a lease; the
// ScyllaDB CDC source and dead-lettering are being added (see pkg/relay).
package main

import (
	"context"
	"errors"
	"os"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/lease"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of cdc-relay.
type Config struct {
	service.StreamConfig `mapstructure:",squash"`
	Relay                relay.Config `mapstructure:"relay"`
	Lease                lease.Config `mapstructure:"lease"`
	Topics               TopicsConfig `mapstructure:"topics"`
}

// TopicsConfig shapes the topics the relay creates when they are missing.
type TopicsConfig struct {
	Partitions  int32 `mapstructure:"partitions" help:"partitions of each aggregate topic created at start"`
	Replication int16 `mapstructure:"replication" help:"replication factor of each aggregate topic created at start"`
}

// Validate checks every part.
func (c *Config) Validate() error {
	var errs []error
	if c.Topics.Partitions < 1 {
		errs = append(errs, config.Errorf("topics.partitions", "must be at least 1, got %d", c.Topics.Partitions))
	}
	if c.Topics.Replication < 1 {
		errs = append(errs, config.Errorf("topics.replication", "must be at least 1, got %d", c.Topics.Replication))
	}
	return errors.Join(append(errs, c.StreamConfig.Validate(), config.Nest("relay", c.Relay.Validate()), config.Nest("lease", c.Lease.Validate()))...)
}

func defaultConfig() *Config {
	return &Config{
		StreamConfig: service.DefaultStreamConfig(":9084"),
		Relay:        relay.DefaultConfig(),
		Lease:        lease.DefaultConfig(),
		Topics:       TopicsConfig{Partitions: 12, Replication: 1},
	}
}

func main() {
	os.Exit(service.Main("cdc-relay", os.Args[1:], defaultConfig(), wire))
}

// wire connects to the database and the broker, makes sure the topics
// exist, and runs the relay as one supervised worker.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	session, err := d.ConnectCQL(ctx, cfg.CQL)
	if err != nil {
		return nil, err
	}
	client, err := d.ConnectKafka(ctx, cfg.Kafka)
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, err
	}
	if err := relay.EnsureTopics(admin, cfg.Topics.Partitions, cfg.Topics.Replication); err != nil {
		return nil, err
	}
	store, err := eventstore.New(session, eventstore.DefaultConfig(), d.Registry, eventstore.WithTracerProvider(d.Tracer))
	if err != nil {
		return nil, err
	}
	sc, err := cfg.Kafka.Sarama(d.Name)
	if err != nil {
		return nil, err
	}
	producer, err := relay.NewProducer(cfg.Kafka.Brokers, sc)
	if err != nil {
		return nil, err
	}
	d.OnClose(func() { _ = producer.Close() })
	r, err := relay.New(cfg.Relay, session, store, producer, d.Logger, d.Registry)
	if err != nil {
		return nil, err
	}
	// One active relay per source: replicas stand by until the lease frees.
	host, _ := os.Hostname()
	l, err := lease.New(session, "relay/scan", host, cfg.Lease, d.Logger, d.Registry)
	if err != nil {
		return nil, err
	}
	return []supervise.Worker{{Name: "relay", Run: func(ctx context.Context) error { return l.Run(ctx, r.Run) }}}, nil
}
