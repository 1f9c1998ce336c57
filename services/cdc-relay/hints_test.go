package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// With commit hints on and the poll of recent commits slowed to its cap
// (relay.recent_interval = relay.idle_max_interval = 5 s, the reconcile an
// hour away), a commit followed by its hint (sent as command-service sends
// it: record.EncodeHint with record.HintProducerConfig) reaches its topic
// well under the cap; a commit whose hint is lost still does, by the poll,
// within about the cap.
func TestHintPublishesWellUnderThePollCap(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	session, c := stacktest.PrivateKeyspace(t, "relayhints_")
	keyspace := c.Keyspace
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 3}, zerolog.Nop(), nil)
	require.NoError(t, err)

	const pollCap = 5 * time.Second
	prefix := privateTopics(t)
	hintTopic := record.HintTopicOf(prefix)
	t.Cleanup(func() { deleteTopic(hintTopic) })
	addr := servicetest.FreeAddr(t)
	p := servicetest.Start(t, servicetest.Build(t), []string{
		"ORDERSTREAM_ADMIN_ADDR=" + addr,
		"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
		"ORDERSTREAM_CQL_KEYSPACE=" + keyspace,
		"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ","),
		"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + prefix,
		"ORDERSTREAM_HINTS_ENABLED=true",
		"ORDERSTREAM_HINTS_GROUP=" + prefix + "-hints",
		"ORDERSTREAM_RELAY_RECENT_INTERVAL=" + pollCap.String(),
		"ORDERSTREAM_RELAY_SCAN_INTERVAL=" + pollCap.String(),
		"ORDERSTREAM_RELAY_IDLE_MAX_INTERVAL=" + pollCap.String(),
		"ORDERSTREAM_RELAY_RECONCILE_EVERY=1h",
		"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
	})
	servicetest.WaitHTTP(t, p, "http://"+addr+"/readyz", http.StatusOK, 60*time.Second)
	cons := consumeFromNow(ctx, t, prefix)

	sc, err := kc.Sarama("relay-hints-test")
	require.NoError(t, err)
	record.HintProducerConfig(sc)
	hints, err := sarama.NewSyncProducer(kc.Brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = hints.Close() })
	hint := func(id gocql.UUID, version int64) {
		_, _, err := hints.SendMessage(record.EncodeHint(hintTopic, record.Hint{AggregateID: id, Version: version}))
		require.NoError(t, err)
	}

	// The relay's group starts at the newest hint once it has joined: probe
	// (hints of an aggregate that does not exist) until one is read.
	require.Eventually(t, func() bool {
		hint(gocql.UUID(uuid.New()), 1)
		return scrape(addr, `orderstream_relay_hints_total{outcome="notified"}`) > 0
	}, 60*time.Second, 200*time.Millisecond, "the relay never read a hint:\n%s", p.Output())

	eur, _ := value.NewCurrency("EUR")
	price, _ := value.NewMoney(250, eur)
	item, _ := value.NewOrderItem("sku", 1, price)
	commit := func() (gocql.UUID, int64) {
		id := gocql.UUID(uuid.New())
		res, err := orders.Handle(ctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}},
			eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()})
		require.NoError(t, err)
		return id, res.Version
	}
	published := func(id gocql.UUID, version int64) func() bool {
		return func() bool { return cons.completeKeys(map[string]int64{id.String(): version}) == 1 }
	}

	var took []time.Duration
	for range 10 {
		id, v := commit()
		start := time.Now()
		hint(id, v)
		require.Eventually(t, published(id, v), pollCap, time.Millisecond, "a hinted commit waited for the poll")
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("commit → record with a hint, poll every %s: p50 %s, max %s", pollCap, took[len(took)/2], took[len(took)-1])
	require.Less(t, took[len(took)/2], pollCap/10, "well under the poll's cap")

	// A lost hint: the poll still finds the commit.
	id, v := commit()
	start := time.Now()
	require.Eventually(t, published(id, v), 2*pollCap+5*time.Second, 10*time.Millisecond, "a commit without a hint was never published")
	t.Logf("commit → record without a hint: %s", time.Since(start))
	cons.requireOrdered(t)
}

// scrape reads one series of a service's /metrics; -1 when absent.
func scrape(addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// deleteTopic deletes a topic the test made, best effort.
func deleteTopic(topic string) {
	k := stacktest.KafkaConfig()
	sc, err := k.Sarama("relay-test-admin")
	if err != nil {
		return
	}
	admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
	if err != nil {
		return
	}
	_ = admin.DeleteTopic(topic)
	_ = admin.Close()
}
