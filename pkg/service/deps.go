package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/admin"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/kafka"
)

// Default names of the readiness checks ConnectCQL and ConnectKafka add.
const (
	CheckCQL   = "cql"
	CheckKafka = "kafka"
)

// ConnectOption changes how ConnectCQL or ConnectKafka connect.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	check     string
	configure []func(*sarama.Config)
}

// CheckName names the connection's readiness check (and dependency), for a
// service with two sessions or clients, or its own naming; the defaults are
// CheckCQL and CheckKafka.
func CheckName(name string) ConnectOption {
	return func(o *connectOptions) { o.check = name }
}

// WithSarama changes the sarama configuration of ConnectKafka's client
// before it connects, so that producers and consumer groups built on the
// client (sarama.NewConsumerGroupFromClient, …) get what they need.
func WithSarama(configure func(*sarama.Config)) ConnectOption {
	return func(o *connectOptions) { o.configure = append(o.configure, configure) }
}

func connectOptionsOf(check string, opts []ConnectOption) connectOptions {
	o := connectOptions{check: check}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Dependency adds a readiness check called name that is also a dependency
// of every worker: a worker failing while it fails waits for it without
// spending its restart budget (supervise.Supervisor.WaitForDependencies).
func (d *Deps) Dependency(name string, check admin.Check) {
	d.mu.Lock()
	if !slices.Contains(d.dependencies, name) {
		d.dependencies = append(d.dependencies, name)
	}
	d.mu.Unlock()
	d.Admin.AddCheck(name, check)
}

// Dependencies are the names of the checks added with Dependency, in the
// order they were added.
func (d *Deps) Dependencies() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dependencies)
}

// dependenciesReady returns the first failing dependency check, naming it.
func (d *Deps) dependenciesReady(ctx context.Context) error {
	names := d.Dependencies()
	if len(names) == 0 {
		return nil
	}
	failures := d.Admin.Ready(ctx)
	for _, name := range names {
		if err := failures[name]; err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// ConnectCQL opens the service's CQL session, adds its readiness check and
// dependency (named CheckCQL unless CheckName says otherwise) and closes
// the session at shutdown.
func (d *Deps) ConnectCQL(ctx context.Context, cfg cql.Config, opts ...ConnectOption) (*gocql.Session, error) {
	o := connectOptionsOf(CheckCQL, opts)
	session, err := cql.Connect(ctx, cfg, cfg.Keyspace, d.Logger)
	if err != nil {
		return nil, err
	}
	d.OnClose(session.Close)
	flavour, err := cql.DetectFlavour(ctx, session)
	if err != nil {
		return nil, err
	}
	d.Logger.Info().Str("flavour", string(flavour)).Strs("hosts", cfg.Hosts).Str("keyspace", cfg.Keyspace).Msg("connected to CQL")
	d.Dependency(o.check, func(ctx context.Context) error { return cql.Ping(ctx, session) })
	return session, nil
}

// ConnectKafka opens a sarama client, adds its readiness check and
// dependency (named CheckKafka unless CheckName says otherwise) and closes
// the client at shutdown. Build producers and consumer groups on the
// returned client, so that the check pings the connections they use; its
// Config() is the sarama configuration, WithSarama options applied.
func (d *Deps) ConnectKafka(ctx context.Context, cfg kafka.Config, opts ...ConnectOption) (sarama.Client, error) {
	o := connectOptionsOf(CheckKafka, opts)
	sc, err := cfg.Sarama(d.Name)
	if err != nil {
		return nil, err
	}
	for _, configure := range o.configure {
		configure(sc)
	}
	client, err := kafka.Connect(ctx, cfg, sc)
	if err != nil {
		return nil, err
	}
	d.OnClose(func() {
		if err := client.Close(); err != nil {
			d.Logger.Warn().Err(err).Msg("closing Kafka client")
		}
	})
	d.Logger.Info().Strs("brokers", cfg.Brokers).Msg("connected to Kafka")
	d.Dependency(o.check, func(ctx context.Context) error { return kafka.Ping(ctx, client) })
	return client, nil
}
