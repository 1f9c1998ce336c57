// Package relaytest runs the relay inside integration tests, on topics of
// the test's own, so that a test's records never reach the default topics
// a local stack's projectors read.
package relaytest

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Topics creates the topics of a new prefix (starting with name) with the
// given partitions, deletes them when the test ends, and returns the
// prefix.
func Topics(ctx context.Context, t testing.TB, kc kafka.Config, name string, partitions int32) string {
	t.Helper()
	prefix := stacktest.UniqueName(name)
	sc, err := kc.Sarama("relaytest-admin")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, kc, sc)
	require.NoError(t, err)
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	require.NoError(t, record.EnsureTopics(admin, prefix, partitions, 1))
	t.Cleanup(func() {
		_ = admin.DeleteTopic(record.TopicOf(prefix, "order"))
		_ = admin.DeleteTopic(record.TopicOf(prefix, "customer"))
		_ = client.Close()
	})
	return prefix
}

// Run runs a relay with the scan source, publishing under prefix, until
// the test ends (or stop is called); it must end without error.
func Run(ctx context.Context, t testing.TB, session *gocql.Session, store *eventstore.Store, kc kafka.Config, prefix string) (stop func()) {
	t.Helper()
	sc, err := kc.Sarama("relaytest-relay")
	require.NoError(t, err)
	producer, err := record.NewProducer(kc.Brokers, sc)
	require.NoError(t, err)
	cfg := relay.DefaultConfig()
	cfg.TopicPrefix = prefix
	r, err := relay.New(cfg, session, store, producer, zerolog.Nop(), nil)
	require.NoError(t, err)
	scan, err := scansource.New(cfg.Config, store, r.ScanHooks(), zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, scan) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
		_ = producer.Close()
	}
	t.Cleanup(stop)
	return stop
}

// WaitPublished waits until the relay has published every committed event.
func WaitPublished(ctx context.Context, t testing.TB, session *gocql.Session, within time.Duration) {
	t.Helper()
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := store.Unpublished(ctx)
		return err == nil && n == 0
	}, within, 200*time.Millisecond, "the relay did not publish everything")
}
