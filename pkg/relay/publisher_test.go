package relay

// Unit tests of the publisher, with no server: the in-memory event store
// (eventstore/memstore), the fake producer (record/recordtest) and the
// in-memory dead-letter store (deadletter.Memory).

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
	"github.com/orderstream/orderstream/pkg/relay/scansource"
)

type bench struct {
	relay    *Relay
	store    *memstore.Store
	producer *recordtest.Producer
	dlq      *deadletter.Memory
}

func newBench(t *testing.T, mutate ...func(*Config)) *bench {
	t.Helper()
	store, err := memstore.New(eventstore.DefaultConfig(), memstore.WithoutRecentIndex())
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = time.Millisecond, 2*time.Millisecond
	cfg.ScanInterval = 5 * time.Millisecond
	cfg.Retry.Every = 5 * time.Millisecond
	for _, m := range mutate {
		m(&cfg)
	}
	b := &bench{store: store, producer: recordtest.NewProducer(3), dlq: deadletter.NewMemory()}
	b.relay, err = New(cfg, nil, store, b.producer, zerolog.Nop(), prometheus.NewRegistry(), WithDeadLetters(b.dlq))
	require.NoError(t, err)
	return b
}

// commit appends n readable order events (OrderConfirmed, any payload the
// contract reads) to a new order, the ones in poison unreadable.
func (b *bench) commit(t *testing.T, n int, poison ...int64) gocql.UUID {
	t.Helper()
	id := gocql.TimeUUID()
	var events []eventstore.Event
	for i := range n {
		data := []byte(`{}`)
		for _, p := range poison {
			if int64(i+1) == p {
				data = []byte(`{"not json`)
			}
		}
		events = append(events, eventstore.Event{EventID: gocql.TimeUUID(), Type: "OrderConfirmed", Version: 1, Data: data, OccurredAt: time.Now()})
	}
	_, err := b.store.Append(context.Background(), "order", id, 0, events)
	require.NoError(t, err)
	return id
}

func (b *bench) head(t *testing.T, id gocql.UUID) eventstore.Head {
	t.Helper()
	h, err := b.store.Head(context.Background(), id)
	require.NoError(t, err)
	return h
}

func sequenceOf(t *testing.T, msg *sarama.ProducerMessage) int64 {
	t.Helper()
	for _, h := range msg.Headers {
		if string(h.Key) == record.HeaderSequence {
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("record without a sequence header")
	return 0
}

// ackedOf are the sequences acknowledged for id, in order.
func (b *bench) ackedOf(t *testing.T, id gocql.UUID) []int64 {
	t.Helper()
	var seqs []int64
	for _, msg := range b.producer.Acked() {
		key, err := msg.Key.Encode()
		require.NoError(t, err)
		if string(key) == id.String() {
			seqs = append(seqs, sequenceOf(t, msg))
		}
	}
	return seqs
}

// failSequence makes every record of sequence seq fail with err.
func (b *bench) failSequence(t *testing.T, seq int64, err error) {
	b.producer.FailWhen(func(msg *sarama.ProducerMessage) error {
		if sequenceOf(t, msg) == seq {
			return err
		}
		return nil
	})
}

// run runs the relay's workers with the scan source until the test ends.
func (b *bench) run(t *testing.T) {
	t.Helper()
	scan, err := scansource.New(b.relay.cfg.Config, b.store, b.relay.ScanHooks(), zerolog.Nop(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.relay.Run(ctx, scan) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// The scan finds what is unpublished and the publisher publishes it in
// order, each once, and records the mark.
func TestScanAndPublishInOrder(t *testing.T) {
	b := newBench(t)
	a, c := b.commit(t, 3), b.commit(t, 2)
	b.run(t)
	require.Eventually(t, func() bool { return b.head(t, a).Published == 3 && b.head(t, c).Published == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []int64{1, 2, 3}, b.ackedOf(t, a))
	require.Equal(t, []int64{1, 2}, b.ackedOf(t, c))
	for _, msg := range b.producer.Acked() {
		require.Equal(t, record.TopicOf(record.DefaultTopicPrefix, "order"), msg.Topic)
	}
}

// A broker outage: two failures in a row open the breaker; while it is
// open no attempt reaches the producer and none is spent; the trial after
// breaker_open_for fails again and spends the last attempt. Nothing is
// dead-lettered: an outage is waited out. Once the broker answers, the
// trial closes the breaker.
func TestBreakerOpensOnAnOutageAndSpendsNoAttempts(t *testing.T) {
	b := newBench(t, func(c *Config) {
		c.BreakerFailures, c.BreakerOpenFor, c.MaxAttempts = 2, 50*time.Millisecond, 3
	})
	b.producer.FailNext(3, recordtest.ErrOutage)
	msg := &sarama.ProducerMessage{Topic: "t", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("v")}
	err := b.relay.send(context.Background(), msg)
	require.ErrorIs(t, err, recordtest.ErrOutage)
	require.ErrorContains(t, err, "after 3 attempts")
	var unpub *unpublishableError
	require.False(t, errors.As(err, &unpub), "an outage is never unpublishable")
	require.Equal(t, 3, b.producer.Sent(), "attempts refused by the open breaker never reach the producer")
	require.Positive(t, testutil.ToFloat64(b.relay.m.failures.WithLabelValues("breaker_open")))
	require.Equal(t, 3.0, testutil.ToFloat64(b.relay.m.failures.WithLabelValues("producer")))
	require.Equal(t, 2.0, testutil.ToFloat64(b.relay.m.breakerState), "open")

	// The broker is back: the next trial goes through and closes it.
	require.NoError(t, b.relay.send(context.Background(), msg))
	require.Equal(t, 0.0, testutil.ToFloat64(b.relay.m.breakerState), "closed")
	require.Len(t, b.producer.Acked(), 1)
}

// A record the broker refuses for its own sake on every attempt does not
// open the breaker (other aggregates go on), and is dead-lettered with its
// aggregate parked behind it.
func TestUnpublishableRecordParksItsAggregateNotTheBreaker(t *testing.T) {
	b := newBench(t, func(c *Config) { c.BreakerFailures, c.MaxAttempts = 1, 2 })
	bad, good := b.commit(t, 2), b.commit(t, 1)
	b.producer.FailKey(bad.String(), recordtest.ErrTooLarge)
	ctx := context.Background()
	b.relay.publishAggregate(ctx, pending{id: bad})
	require.Equal(t, 0.0, testutil.ToFloat64(b.relay.m.breakerState), "still closed")
	require.True(t, b.relay.parking.Has(bad))
	require.Equal(t, int64(0), b.head(t, bad).Published)
	page, err := b.dlq.List(ctx, deadletter.Filter{AggregateID: bad}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	require.Equal(t, int64(1), page.Entries[0].Sequence)
	require.Equal(t, Component, page.Entries[0].Component)
	require.Equal(t, 2.0, testutil.ToFloat64(b.relay.m.failures.WithLabelValues(ReasonTooLarge)), "refused on both attempts, counted by reason")

	b.relay.publishAggregate(ctx, pending{id: good})
	require.Equal(t, []int64{1}, b.ackedOf(t, good), "the breaker let the other aggregate through")
	b.producer.Heal()
	b.relay.publishAggregate(ctx, pending{id: bad})
	require.Empty(t, b.ackedOf(t, bad), "a parked aggregate waits for its re-drive")
}

// A poison event (unreadable payload): what precedes it is published and
// marked, it is dead-lettered and its aggregate parked; what follows
// waits.
func TestPoisonEventIsDeadLetteredAfterWhatPrecedesIt(t *testing.T) {
	b := newBench(t)
	id := b.commit(t, 4, 3)
	b.relay.publishAggregate(context.Background(), pending{id: id})
	require.Equal(t, []int64{1, 2}, b.ackedOf(t, id))
	require.Equal(t, int64(2), b.head(t, id).Published)
	require.True(t, b.relay.parking.Has(id))
	require.Equal(t, 1.0, testutil.ToFloat64(b.relay.m.deadLettered))
	require.Equal(t, 1.0, testutil.ToFloat64(b.relay.m.parked))
}

// The held-aggregate schedule: an aggregate whose publishing failed (an
// outage outlasting max_attempts) is held back 2·initial_backoff, doubling
// per failure up to a minute; sources' notifications of it are dropped
// meanwhile; a success forgets the hold.
func TestHeldAggregateSchedule(t *testing.T) {
	b := newBench(t, func(c *Config) {
		c.InitialBackoff, c.MaxBackoff, c.MaxAttempts, c.BreakerFailures = time.Second, time.Second, 1, 100
	})
	require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute},
		[]time.Duration{b.relay.holdPolicy().Nominal(1), b.relay.holdPolicy().Nominal(2), b.relay.holdPolicy().Nominal(3), b.relay.holdPolicy().Nominal(4),
			b.relay.holdPolicy().Nominal(5), b.relay.holdPolicy().Nominal(6), b.relay.holdPolicy().Nominal(40)})

	id := b.commit(t, 1)
	b.producer.FailKey(id.String(), recordtest.ErrOutage)
	ctx := context.Background()
	for failures := 1; failures <= 3; failures++ {
		before := time.Now()
		b.relay.publishAggregate(ctx, pending{id: id})
		b.relay.heldMu.Lock()
		h := b.relay.held[id]
		b.relay.heldMu.Unlock()
		require.Equal(t, failures, h.failures)
		want := b.relay.holdPolicy().Nominal(failures)
		require.WithinRange(t, h.until, before.Add(want), time.Now().Add(want))
		require.True(t, b.relay.isHeld(id))

		// Held: publishing it again, or a source's notification, sends
		// nothing.
		sent := b.producer.Sent()
		b.relay.publishAggregate(ctx, pending{id: id})
		done := make(chan struct{})
		require.NoError(t, b.relay.Notify(ctx, id, func() { close(done) }))
		<-done // handled at once, without a worker
		require.Equal(t, sent, b.producer.Sent())

		// Its time has come.
		b.relay.heldMu.Lock()
		h.until = time.Now().Add(-time.Nanosecond)
		b.relay.held[id] = h
		b.relay.heldMu.Unlock()
	}
	b.producer.Heal()
	b.relay.publishAggregate(ctx, pending{id: id})
	require.Equal(t, []int64{1}, b.ackedOf(t, id))
	b.relay.heldMu.Lock()
	_, held := b.relay.held[id]
	b.relay.heldMu.Unlock()
	require.False(t, held, "a success forgets the hold")
}

// A flush that stops part-way (the broker acknowledged some records, then
// failed) records how far it got; the next attempt resumes there, so each
// event is published once and in order.
func TestResumeAfterPartialAck(t *testing.T) {
	b := newBench(t, func(c *Config) { c.MaxAttempts, c.BreakerFailures, c.MarkEvery = 1, 100, 100 })
	id := b.commit(t, 5)
	b.failSequence(t, 4, recordtest.ErrNoLeader)
	ctx := context.Background()
	b.relay.publishAggregate(ctx, pending{id: id})
	require.Equal(t, []int64{1, 2, 3}, b.ackedOf(t, id))
	require.Equal(t, int64(3), b.head(t, id).Published, "the acknowledged part is marked")
	require.True(t, b.relay.isHeld(id))

	b.producer.Heal()
	b.relay.heldMu.Lock()
	delete(b.relay.held, id)
	b.relay.heldMu.Unlock()
	b.relay.publishAggregate(ctx, pending{id: id})
	require.Equal(t, []int64{1, 2, 3, 4, 5}, b.ackedOf(t, id), "resumed after 3: each once, in order")
	require.Equal(t, int64(5), b.head(t, id).Published)
}

// MarkEvery bounds how many records may be published again after a crash:
// the mark is written after every mark_every records.
func TestMarkEveryFlushesPartway(t *testing.T) {
	b := newBench(t, func(c *Config) { c.MaxAttempts, c.BreakerFailures, c.MarkEvery = 1, 100, 2 })
	id := b.commit(t, 5)
	b.failSequence(t, 5, recordtest.ErrOutage)
	b.relay.publishAggregate(context.Background(), pending{id: id})
	require.Equal(t, int64(4), b.head(t, id).Published)
}

// A re-drive through the dlq-service's retry request, served by the
// redrive worker: once the poison event is fixed, a retry publishes it and
// what waited behind it, in order, settles the dead letter and unparks the
// aggregate.
func TestRetryRequestRepublishesAndUnparks(t *testing.T) {
	b := newBench(t)
	id := b.commit(t, 3, 2)
	b.run(t)
	require.Eventually(t, func() bool { return b.relay.parking.Has(id) }, 5*time.Second, time.Millisecond)
	ctx := context.Background()
	page, err := b.dlq.List(ctx, deadletter.Filter{AggregateID: id}, gocql.UUID{}, 10)
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	e := page.Entries[0]

	require.True(t, b.store.ReplaceEventData(id, 2, []byte(`{}`)), "the operator's fix")
	req, created, err := b.dlq.Submit(ctx, deadletter.Request{Component: Component, AggregateID: id, DLQID: e.ID, Action: deadletter.ActionRetry, RequestedBy: "test"})
	require.NoError(t, err)
	require.True(t, created)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, found, err := b.dlq.AwaitResult(wctx, req.ID, time.Millisecond)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, deadletter.StatusSucceeded, res.Status, res.Detail)
	require.Equal(t, int64(2), res.Applied)
	require.Equal(t, int64(3), res.Progress)
	require.Equal(t, []int64{1, 2, 3}, b.ackedOf(t, id))
	require.False(t, b.relay.parking.Has(id))
}
