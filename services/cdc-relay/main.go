// Command cdc-relay turns committed events into Redpanda records, in order
// per aggregate, never lost. The scan source (token-range scans of
// event_store's static columns) works on every CQL database; on ScyllaDB the
// CDC source (source=scylla-cdc) notifies the relay of each commit and the
// scan becomes the reconcile. With commit hints (hints.enabled) the relay
// learns of each commit from the hint topic the command-service writes, and
// the scan's fast poll backs off while it finds nothing (with the CDC
// source too, the full scans only reconcile). One replica is active, held
// by a lease.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/lease"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/cdcsource"
	"github.com/orderstream/orderstream/pkg/relay/hintsource"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of cdc-relay.
type Config struct {
	service.StreamConfig `mapstructure:",squash"`
	Source               string            `mapstructure:"source" help:"where the relay learns of commits: scan (any CQL database) or scylla-cdc (ScyllaDB's CDC log, with the scan as a slower reconcile)"`
	CDC                  cdcsource.Config  `mapstructure:"cdc"`
	Relay                relay.Config      `mapstructure:"relay"`
	Lease                lease.Config      `mapstructure:"lease"`
	Topics               record.TopicSpec  `mapstructure:"topics"`
	Hints                hintsource.Config `mapstructure:"hints"`
}

// Validate checks every part.
func (c *Config) Validate() error {
	var errs []error
	if c.Source != "scan" && c.Source != "scylla-cdc" {
		errs = append(errs, config.Errorf("source", "must be scan or scylla-cdc, got %q", c.Source))
	}
	return errors.Join(append(errs, c.StreamConfig.Validate(), config.Nest("topics", c.Topics.Validate()), config.Nest("relay", c.Relay.Validate()), config.Nest("lease", c.Lease.Validate()), config.Nest("cdc", c.CDC.Validate()), config.Nest("hints", c.Hints.Validate()))...)
}

func defaultConfig() *Config {
	return &Config{
		StreamConfig: service.DefaultStreamConfig(":9084"),
		Source:       "scan",
		CDC:          cdcsource.DefaultConfig(),
		Relay:        relay.DefaultConfig(),
		Lease:        lease.DefaultConfig(),
		Topics:       record.DefaultTopicSpec(),
		Hints:        hintsource.DefaultConfig(),
	}
}

func main() {
	os.Exit(service.Main("cdc-relay", os.Args[1:], defaultConfig(), wire))
}

// wire connects to the database and the broker, makes sure the topics
// exist, and runs the relay's parts as supervised workers of their own:
// "lease" contends for the relay's lease, and while this replica holds it
// the gate lets "publisher" (the worker pool), "scan" (the scan source),
// "cdc" (the CDC source, with source=scylla-cdc), "hints" (the hint
// source, with hints.enabled) and "redrive" (the dlq-service's retry
// requests) run; when the lease is lost they stop and wait for it again.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	session, err := d.ConnectCQL(ctx, cfg.CQL)
	if err != nil {
		return nil, err
	}
	client, err := d.ConnectKafka(ctx, cfg.Kafka, service.WithSarama(record.ProducerConfig))
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, err
	}
	if err := record.EnsureTopics(admin, cfg.Relay.TopicPrefix, cfg.Topics.Partitions, cfg.Topics.Replication); err != nil {
		return nil, err
	}
	if cfg.Hints.Enabled {
		if err := record.EnsureHintTopic(admin, cfg.Relay.TopicPrefix, cfg.Hints.Topic); err != nil {
			return nil, err
		}
	}
	store, err := eventstore.New(session, cfg.EventStore, d.Registry, eventstore.WithTracerProvider(d.Tracer))
	if err != nil {
		return nil, err
	}
	// The producer shares the client whose connections the "kafka"
	// readiness check pings.
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	d.OnClose(func() { _ = producer.Close() })
	r, err := relay.New(cfg.Relay, session, store, producer, d.Logger, d.Registry, relay.WithTracerProvider(d.Tracer))
	if err != nil {
		return nil, err
	}
	// With hints, the scan's fast poll backs off while it finds only what
	// hints announced.
	var (
		hints    *hintsource.Source
		scanOpts []scansource.Option
	)
	if cfg.Hints.Enabled {
		if hints, err = newHintSource(cfg, d); err != nil {
			return nil, err
		}
		scanOpts = append(scanOpts, scansource.WithHints(hints.Hinted))
		// With the CDC log and the hints both telling the relay of commits,
		// the full scans (ScyllaDB has no index on updated_at) are only the
		// reconcile, backing off to relay.reconcile_max_every while idle.
		if cfg.Source == "scylla-cdc" {
			scanOpts = append(scanOpts, scansource.ReconcileOnly())
		}
	}
	scan, err := scansource.New(cfg.Relay.Config, store, r.ScanHooks(), d.Logger, d.Registry, scanOpts...)
	if err != nil {
		return nil, err
	}
	gated := append(r.Workers(), r.SourceWorker("scan", scan))
	if hints != nil {
		gated = append(gated, r.SourceWorker("hints", hints))
	}
	if cfg.Source == "scylla-cdc" {
		if flavour, err := cql.DetectFlavour(ctx, session); err != nil {
			return nil, err
		} else if flavour != cql.ScyllaDB {
			return nil, fmt.Errorf("source scylla-cdc needs ScyllaDB's CDC log, but the database is %s; use source scan", flavour)
		}
		cdc, err := cdcsource.New(session, cfg.CQL.Keyspace, "relay", cfg.CDC, r.DeadLetterRow, d.Logger, d.Registry)
		if err != nil {
			return nil, err
		}
		// The CDC source notifies the publisher of each commit; the scan
		// goes on as the reconcile that catches whatever it missed.
		gated = append(gated, r.SourceWorker("cdc", cdc))
	}
	// One active relay: replicas stand by until the lease frees.
	host, _ := os.Hostname()
	l, err := lease.New(session, "relay", host, cfg.Lease, d.Logger, d.Registry)
	if err != nil {
		return nil, err
	}
	gate := supervise.NewGate()
	workers := []supervise.Worker{{Name: "lease", Run: func(ctx context.Context) error { return l.Run(ctx, gate.Hold) }}}
	for _, w := range gated {
		workers = append(workers, supervise.Worker{Name: w.Name, Run: gate.Guard(w.Run)})
	}
	return workers, nil
}

// newHintSource builds the hint source on a consumer group of its own
// (joined only while this replica holds the lease, when the worker runs).
func newHintSource(cfg *Config, d *service.Deps) (*hintsource.Source, error) {
	sc, err := cfg.Kafka.Sarama(d.Name)
	if err != nil {
		return nil, err
	}
	record.HintConsumerConfig(sc)
	group, err := sarama.NewConsumerGroup(cfg.Kafka.Brokers, cfg.Hints.Group, sc)
	if err != nil {
		return nil, fmt.Errorf("creating the hint consumer group %s: %w", cfg.Hints.Group, err)
	}
	d.OnClose(func() { _ = group.Close() })
	return hintsource.New(group, record.HintTopicOf(cfg.Relay.TopicPrefix), d.Logger, d.Registry)
}
