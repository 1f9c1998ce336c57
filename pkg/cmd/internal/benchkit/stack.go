package benchkit

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
)

// Open migrates keyspace on hosts (comma-separated), dropping it first when
// fresh is set, and connects to it.
func Open(ctx context.Context, hosts, keyspace string, fresh bool) (*gocql.Session, error) {
	cfg := cql.DefaultConfig()
	cfg.Hosts = strings.Split(hosts, ",")
	cfg.Keyspace = keyspace
	cfg.NumConns = 4
	if err := PrepareKeyspace(ctx, cfg, fresh); err != nil {
		return nil, err
	}
	return cql.Connect(ctx, cfg, cfg.Keyspace, zerolog.Nop())
}

// Topics creates the topics of prefix with the given partitions and
// returns a function that deletes them.
func Topics(ctx context.Context, kc kafka.Config, prefix string, partitions int32) (func(), error) {
	sc, err := kc.Sarama("bench-admin")
	if err != nil {
		return nil, err
	}
	client, err := kafka.Connect(ctx, kc, sc)
	if err != nil {
		return nil, err
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := record.EnsureTopics(admin, prefix, partitions, 1); err != nil {
		_ = client.Close()
		return nil, err
	}
	return func() {
		_ = admin.DeleteTopic(record.TopicOf(prefix, "order"))
		_ = admin.DeleteTopic(record.TopicOf(prefix, "customer"))
		_ = client.Close()
	}, nil
}

// StartRelay runs a relay with cfg until the returned stop is called;
// wrap, when set, wraps its producer (to time the sends, say).
func StartRelay(ctx context.Context, session *gocql.Session, store *eventstore.Store, kc kafka.Config, cfg relay.Config,
	reg prometheus.Registerer, wrap func(relay.Producer) relay.Producer) (func() error, error) {
	sc, err := kc.Sarama("bench-relay")
	if err != nil {
		return nil, err
	}
	p, err := record.NewProducer(kc.Brokers, sc)
	if err != nil {
		return nil, err
	}
	var producer relay.Producer = p
	if wrap != nil {
		producer = wrap(p)
	}
	logger := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	r, err := relay.New(cfg, session, store, producer, logger, reg)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	scan, err := scansource.New(cfg.Config, store, r.ScanHooks(), logger, reg)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, scan) }()
	return func() error {
		cancel()
		err := <-done
		return errors.Join(err, p.Close())
	}, nil
}
