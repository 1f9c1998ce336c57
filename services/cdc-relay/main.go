// Command cdc-relay turns committed events into Redpanda records, in order
// per aggregate, never lost. The scan source (token-range scans of
// event_store's static columns) works on every CQL database; on ScyllaDB the
// CDC source (source=scylla-cdc) notifies the relay of each commit and the
// scan becomes the reconcile. One replica is active, held by a lease.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/IBM/sarama"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/lease"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/cdcsource"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of cdc-relay.
type Config struct {
	service.StreamConfig `mapstructure:",squash"`
	Source               string           `mapstructure:"source" help:"where the relay learns of commits: scan (any CQL database) or scylla-cdc (ScyllaDB's CDC log, with the scan as a slower reconcile)"`
	CDC                  cdcsource.Config `mapstructure:"cdc"`
	Relay                relay.Config     `mapstructure:"relay"`
	Lease                lease.Config     `mapstructure:"lease"`
	Topics               TopicsConfig     `mapstructure:"topics"`
}

// TopicsConfig shapes the topics the relay creates when they are missing.
type TopicsConfig struct {
	Partitions  int32 `mapstructure:"partitions" help:"partitions of each aggregate topic created at start"`
	Replication int16 `mapstructure:"replication" help:"replication factor of each aggregate topic created at start"`
}

// Validate checks every part.
func (c *Config) Validate() error {
	var errs []error
	if c.Source != "scan" && c.Source != "scylla-cdc" {
		errs = append(errs, config.Errorf("source", "must be scan or scylla-cdc, got %q", c.Source))
	}
	if c.Topics.Partitions < 1 {
		errs = append(errs, config.Errorf("topics.partitions", "must be at least 1, got %d", c.Topics.Partitions))
	}
	if c.Topics.Replication < 1 {
		errs = append(errs, config.Errorf("topics.replication", "must be at least 1, got %d", c.Topics.Replication))
	}
	return errors.Join(append(errs, c.StreamConfig.Validate(), config.Nest("relay", c.Relay.Validate()), config.Nest("lease", c.Lease.Validate()), config.Nest("cdc", c.CDC.Validate()))...)
}

func defaultConfig() *Config {
	return &Config{
		StreamConfig: service.DefaultStreamConfig(":9084"),
		Source:       "scan",
		CDC:          cdcsource.DefaultConfig(),
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
	if err := relay.EnsureTopics(admin, cfg.Relay.TopicPrefix, cfg.Topics.Partitions, cfg.Topics.Replication); err != nil {
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
	r, err := relay.New(cfg.Relay, session, store, producer, d.Logger, d.Registry, relay.WithTracerProvider(d.Tracer))
	if err != nil {
		return nil, err
	}
	work := r.Run
	if cfg.Source == "scylla-cdc" {
		if flavour, err := cql.DetectFlavour(ctx, session); err != nil {
			return nil, err
		} else if flavour != cql.ScyllaDB {
			return nil, fmt.Errorf("source scylla-cdc needs ScyllaDB's CDC log, but the database is %s; use source scan", flavour)
		}
		src, err := cdcsource.New(session, cfg.CQL.Keyspace, "relay", cfg.CDC,
			func(ctx context.Context, c cdcsource.Change) error { return r.Notify(ctx, c.AggregateID) },
			r.DeadLetterRow, d.Logger, d.Registry)
		if err != nil {
			return nil, err
		}
		// The CDC source notifies the relay of each commit; the relay's
		// scans go on as the reconcile that catches whatever it missed.
		work = func(ctx context.Context) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return r.Run(ctx) })
			g.Go(func() error { return src.Run(ctx) })
			return g.Wait()
		}
	}
	// One active relay: replicas stand by until the lease frees.
	host, _ := os.Hostname()
	l, err := lease.New(session, "relay", host, cfg.Lease, d.Logger, d.Registry)
	if err != nil {
		return nil, err
	}
	return []supervise.Worker{{Name: "relay", Run: func(ctx context.Context) error { return l.Run(ctx, work) }}}, nil
}
