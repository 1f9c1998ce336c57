package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// pipeline is the relay and (optionally) the four projectors running in
// this process on the env's keyspace and topics of the test's own, each
// serving the dlq-service's retry requests as the real services do.
type pipeline struct {
	kc     kafka.Config
	prefix string
	// orderRM is the order-read-model projector, the one the tests make
	// fail.
	orderRM *projector.Projector[readmodel.Order]
}

// faulty wraps a view so that Fold fails the events fail picks, as a bug
// in a projector would, until the test "fixes" it.
func faulty[S any](v projector.View[S], fail func(eventstore.Event) bool) projector.View[S] {
	fold := v.Fold
	v.Fold = func(s S, e eventstore.Event) (S, error) {
		if fail(e) {
			return s, fmt.Errorf("injected failure of %s %d", e.Type, e.Sequence)
		}
		return fold(s, e)
	}
	return v
}

func startPipeline(ctx context.Context, t *testing.T, e *env, orderRM *projector.View[readmodel.Order]) *pipeline {
	t.Helper()
	kc := stacktest.RequireKafka(t)
	p := &pipeline{kc: kc, prefix: relaytest.Topics(ctx, t, kc, "dlqit", 3)}

	sc, err := kc.Sarama("dlq-it-relay")
	require.NoError(t, err)
	producer, err := record.NewProducer(kc.Brokers, sc)
	require.NoError(t, err)
	rcfg := relay.DefaultConfig()
	rcfg.TopicPrefix = p.prefix
	rcfg.Retry.Every = 50 * time.Millisecond
	r, err := relay.New(rcfg, e.session, e.store, producer, zerolog.Nop(), nil)
	require.NoError(t, err)
	scan, err := scansource.New(rcfg.Config, e.store, r.ScanHooks(), zerolog.Nop(), nil)
	require.NoError(t, err)
	run(ctx, t, "relay", func(ctx context.Context) error { return r.Run(ctx, scan) })
	t.Cleanup(func() { _ = producer.Close() })

	if orderRM == nil {
		return p
	}
	p.orderRM = startProjector(ctx, t, e, p, *orderRM)
	startProjector(ctx, t, e, p, readmodel.OrdersByCustomer())
	startProjector(ctx, t, e, p, readmodel.OrdersByStatus())
	startProjector(ctx, t, e, p, readmodel.CustomerReadModel())
	return p
}

func startProjector[S any](ctx context.Context, t *testing.T, e *env, p *pipeline, view projector.View[S]) *projector.Projector[S] {
	t.Helper()
	cfg := projector.DefaultConfig()
	cfg.Group = stacktest.UniqueName("dlq-it-")
	cfg.TopicPrefix = p.prefix
	cfg.ParkedEvery = 100 * time.Millisecond
	cfg.Retry.Every = 50 * time.Millisecond
	pr, err := projector.New(cfg, view, e.session, e.store, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	sc, err := p.kc.Sarama("dlq-it-" + view.Name)
	require.NoError(t, err)
	run(ctx, t, view.Name, func(ctx context.Context) error { return pr.Run(ctx, p.kc.Brokers, sc) })
	return pr
}

// run runs a worker until the test ends; it must end without error.
func run(ctx context.Context, t *testing.T, name string, work func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- work(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, name)
	})
}

// published waits until the relay has published every committed event.
func (e *env) published(ctx context.Context) {
	e.t.Helper()
	relaytest.WaitPublished(ctx, e.t, e.session, time.Minute)
}

// exactExcept waits until every read model equals the fold of event_store
// except, in order_read_model, the rows of the given orders, and returns
// the mismatches left (all about those orders).
func (e *env) exactExcept(ctx context.Context, within time.Duration, orders ...gocql.UUID) []string {
	e.t.Helper()
	var last readmodeltest.Report
	deadline := time.Now().Add(within)
	for {
		r, err := readmodeltest.Check(ctx, e.session, e.store)
		require.NoError(e.t, err)
		last = r
		others := 0
		for _, m := range r.Mismatches {
			mine := false
			for _, id := range orders {
				mine = mine || (strings.Contains(m, id.String()) && strings.HasPrefix(m, readmodel.OrderReadModelTable))
			}
			if !mine {
				others++
			}
		}
		if others == 0 && (len(orders) > 0 || r.OK()) {
			return r.Mismatches
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("read models differ from event_store:\n%s", last)
		}
		time.Sleep(200 * time.Millisecond) // a read of whole tables; no faster
	}
}

// produce writes a raw record to the orders topic (one the projectors
// cannot place: its key is not an aggregate id).
func (p *pipeline) produce(t *testing.T, key, value string) {
	t.Helper()
	sc, err := p.kc.Sarama("dlq-it-raw")
	require.NoError(t, err)
	sc.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer(p.kc.Brokers, sc)
	require.NoError(t, err)
	defer func() { _ = producer.Close() }()
	_, _, err = producer.SendMessage(&sarama.ProducerMessage{Topic: record.TopicOf(p.prefix, "order"), Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(value)})
	require.NoError(t, err)
}
