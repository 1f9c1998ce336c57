package service

import (
	"context"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/kafka"
)

// ConnectCQL opens the service's CQL session, adds the "cql" readiness
// check and closes the session at shutdown.
func (d *Deps) ConnectCQL(ctx context.Context, cfg cql.Config) (*gocql.Session, error) {
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
	d.Admin.AddCheck("cql", func(ctx context.Context) error { return cql.Ping(ctx, session) })
	return session, nil
}

// ConnectKafka opens a sarama client, adds the "kafka" readiness check and
// closes the client at shutdown. The client's config is returned with it
// for building producers and consumer groups on the same connections.
func (d *Deps) ConnectKafka(ctx context.Context, cfg kafka.Config) (sarama.Client, error) {
	sc, err := cfg.Sarama(d.Name)
	if err != nil {
		return nil, err
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
	d.Admin.AddCheck("kafka", func(ctx context.Context) error { return kafka.Ping(ctx, client) })
	return client, nil
}
