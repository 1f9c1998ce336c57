package main

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// A command on the real stack sends its hint through the real broker, with
// record.HintProducerConfig: the hint names the aggregate and the version
// the command answered.
func TestCommandSendsItsHintThroughTheBroker(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	session := stacktest.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg := defaultConfig()
	cfg.CQL = stacktest.CQLConfig()
	cfg.Kafka = kc
	cfg.Hints.Enabled = true
	cfg.Hints.TopicPrefix = stacktest.UniqueName("cmdhints")
	require.NoError(t, cfg.Validate())
	topic := cfg.Hints.HintTopic()

	sc, err := kc.Sarama("command-service-hints-test")
	require.NoError(t, err)
	client, err := sarama.NewClient(kc.Brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	spec := record.DefaultHintTopicSpec()
	spec.Partitions = 1
	require.NoError(t, record.EnsureHintTopic(admin, cfg.Hints.TopicPrefix, spec))
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })

	// Read the topic from its start (it is new).
	consumer, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	var pc sarama.PartitionConsumer
	require.Eventually(t, func() bool {
		_ = client.RefreshMetadata(topic)
		pc, err = consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
		return err == nil
	}, 15*time.Second, 100*time.Millisecond, "the hint topic has no leader: %v", err)
	t.Cleanup(func() { _ = pc.Close() })
	var (
		mu  sync.Mutex
		got []record.Hint
	)
	go func() {
		for msg := range pc.Messages() {
			h, err := record.DecodeHint(msg)
			if err == nil {
				mu.Lock()
				got = append(got, h)
				mu.Unlock()
			}
		}
	}()

	reg := prometheus.NewRegistry()
	sender, err := newHintSender(cfg.Hints, kafkaHintProducer(cfg.Kafka, "command-service-test"), zerolog.Nop(), reg)
	require.NoError(t, err)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sender.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	handler, err := newHandler(session, cfg, zerolog.Nop(), reg, noop.NewTracerProvider(), sender)
	require.NoError(t, err)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL, session: session, reg: reg}

	id, err := gocql.ParseUUID(e.registerCustomer())
	require.NoError(t, err)
	want := record.Hint{AggregateID: id, Version: 1}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0] == want
	}, 30*time.Second, 10*time.Millisecond, "the hint of the command")
	require.Equal(t, 1.0, testutil.ToFloat64(sender.sent))
	require.Zero(t, testutil.ToFloat64(sender.dropped.WithLabelValues(dropQueueFull))+testutil.ToFloat64(sender.dropped.WithLabelValues(dropSendFailed)))
}
