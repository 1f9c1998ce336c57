package projector_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The projector consumes through projector.ConsumerGroup, here the
// in-memory broker's (recordtest), with the real Cassandra behind it: the
// records of a load, encoded as the relay encodes them, end in
// order_read_model exactly as event_store folds them; readiness follows the
// claimed partitions' high water marks; a rebalance ends the session, and
// the next one goes on from the committed offsets.
func TestConsumeThroughTheConsumerGroupSeam(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	session, _ := stacktest.PrivateKeyspace(t, "projmem_")
	wm := servicetest.NewWriteModel(t, session, 10)
	store, orders, customers := wm.Store, wm.Orders, wm.Customers

	const prefix = "mem"
	broker := recordtest.NewBroker(3)
	producer := broker.Producer()
	up := eventcodec.NewUpcasters()
	// publish does what the relay does, without its machinery: every
	// unpublished event, in order per aggregate, then the mark.
	publish := func() {
		t.Helper()
		var heads []eventstore.Head
		require.NoError(t, store.Heads(ctx, func(h eventstore.Head) error {
			if h.Unpublished() > 0 {
				heads = append(heads, h)
			}
			return nil
		}))
		for _, h := range heads {
			require.NoError(t, store.Events(ctx, h.AggregateID, h.Published, h.Current, func(e eventstore.Event) error {
				e, err := up.Upcast(e)
				if err != nil {
					return err
				}
				msg, err := record.Encode(e, prefix)
				if err != nil {
					return err
				}
				_, _, err = producer.SendMessage(msg)
				return err
			}))
			require.NoError(t, store.MarkPublished(ctx, h.AggregateID, h.Current))
		}
	}
	load := func(commands, aggregates int) {
		t.Helper()
		_, err := loadgen.Run(ctx, loadgen.Config{Commands: commands, Aggregates: aggregates, Workers: 8, Seed: rand.Uint64()}, orders, customers)
		require.NoError(t, err)
		publish()
	}
	matches := func() bool {
		r, err := readmodeltest.CheckTables(ctx, session, store, readmodel.OrderReadModelTable)
		require.NoError(t, err)
		return r.OK()
	}

	cfg := projector.DefaultConfig()
	cfg.TopicPrefix = prefix
	p, err := projector.New(cfg, readmodel.OrderReadModel(), session, store, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	var group *recordtest.ConsumerGroup
	joined := make(chan string, 1)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- p.Consume(cctx, func(name string) (projector.ConsumerGroup, error) {
			group = broker.ConsumerGroup(name)
			joined <- name
			return group, nil
		})
	}()
	groupName := <-joined
	require.Equal(t, "projector-"+readmodel.OrderReadModel().Name, groupName, "the projector joins its configured group")

	load(300, 40)
	require.NotEmpty(t, broker.Records(record.TopicOf(prefix, "order")))
	require.Eventually(t, matches, time.Minute, 50*time.Millisecond, "order_read_model differs from event_store")
	require.Eventually(t, func() bool { return p.Ready(ctx) == nil }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, p.Lag())

	group.Rebalance()
	require.Eventually(t, func() bool { return group.Generation() == 2 }, 10*time.Second, 10*time.Millisecond)
	topic := record.TopicOf(prefix, "order")
	var committed int64
	for part := range broker.Partitions() {
		if off := broker.Committed(groupName, topic, part); off > 0 {
			committed += off
		}
	}
	require.Len(t, broker.Records(topic), int(committed), "the first session committed every record it applied")

	load(200, 40)
	require.Eventually(t, matches, time.Minute, 50*time.Millisecond, "order_read_model differs from event_store after the rebalance")
	require.Equal(t, int32(2), group.Generation())

	stop()
	require.NoError(t, <-done)
}
