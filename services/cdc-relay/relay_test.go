package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// 20,000 commands across 2,000 aggregates while the relay runs as a real
// process, SIGKILLed and restarted three times during the load: every
// committed event arrives, per key in sequence order once duplicates are
// dropped. Then two replicas: exactly one publishes; kill it and the other
// takes over within the lease TTL, losing nothing.
func TestNothingLostAcrossKillsAndTakeover(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	session, c := stacktest.PrivateKeyspace(t, "relayfault_")
	keyspace := c.Keyspace
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	up := eventcodec.NewUpcasters()
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 10}
	orders, err := repository.NewOrders(store, up, rc, zerolog.Nop(), nil)
	require.NoError(t, err)
	customers, err := repository.NewCustomers(store, up, rc, zerolog.Nop(), nil)
	require.NoError(t, err)

	bin := servicetest.Build(t)
	prefix := privateTopics(t)
	env := func(addr string) []string {
		return []string{
			"ORDERSTREAM_ADMIN_ADDR=" + addr,
			"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
			"ORDERSTREAM_CQL_KEYSPACE=" + keyspace,
			"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ","),
			"ORDERSTREAM_LEASE_TTL=3s", "ORDERSTREAM_LEASE_RENEW_EVERY=500ms",
			"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + prefix,
			"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
		}
	}
	type replica struct {
		p    *servicetest.Process
		addr string
	}
	startReplica := func() replica {
		addr := servicetest.FreeAddr(t)
		p := servicetest.Start(t, bin, env(addr))
		servicetest.WaitHTTP(t, p, "http://"+addr+"/readyz", http.StatusOK, 60*time.Second)
		return replica{p: p, addr: addr}
	}

	first := startReplica() // creates the topics
	cons := consumeFromNow(ctx, t, prefix)

	// The load: 1,000 orders × 4 commands and 1,000 customers × 16.
	eur, _ := value.NewCurrency("EUR")
	price, _ := value.NewMoney(250, eur)
	item, _ := value.NewOrderItem("sku", 1, price)
	email, _ := value.NewEmail("load@example.org")
	type job struct {
		id   gocql.UUID
		kind string
		n    int
	}
	var jobs []job
	for range 1000 {
		jobs = append(jobs, job{gocql.UUID(uuid.New()), "order", 4}, job{gocql.UUID(uuid.New()), "customer", 16})
	}
	var done atomic.Int64
	load := func(from, to int) {
		var wg sync.WaitGroup
		next := atomic.Int64{}
		next.Store(int64(from))
		for range 32 {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < to; i = int(next.Add(1) - 1) {
					j := jobs[i]
					meta := eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "relay-fault", Now: time.Now()}
					for k := range j.n {
						var err error
						if j.kind == "order" {
							cmds := []order.Command{order.CreateOrder{OrderID: j.id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}},
								order.ConfirmOrder{}, order.ShipOrder{Carrier: "c", TrackingNumber: "t"}, order.DeliverOrder{}}
							_, err = orders.Handle(ctx, j.id, cmds[k], meta)
						} else {
							var cmd customer.Command = customer.UpdateProfile{Name: fmt.Sprintf("name %d", k)}
							if k == 0 {
								cmd = customer.RegisterCustomer{CustomerID: j.id.String(), Name: "load", Email: email}
							}
							_, err = customers.Handle(ctx, j.id, cmd, meta)
						}
						require.NoError(t, err)
						done.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}

	// Four quarters of the load; the relay is killed after each of the
	// first three and a new process started.
	current := first
	quarter := len(jobs) / 4
	for q := range 4 {
		load(q*quarter, (q+1)*quarter)
		if q < 3 {
			require.NoError(t, current.p.Signal(syscall.SIGKILL))
			current.p.Wait(10 * time.Second)
			current = startReplica()
		}
	}
	require.Equal(t, int64(20000), done.Load())
	want := map[string]int64{}
	for _, j := range jobs {
		want[j.id.String()] = int64(j.n)
	}
	require.Eventually(t, func() bool { return cons.complete(want) }, 2*time.Minute, 100*time.Millisecond,
		"events missing after the kills: %d of %d keys complete", cons.completeKeys(want), len(want))

	// Two replicas: exactly one is the leader and publishes.
	standby := startReplica()
	require.Eventually(t, func() bool { return leader(t, current.addr) == 1 && leader(t, standby.addr) == 0 }, 10*time.Second, 100*time.Millisecond)
	require.Never(t, func() bool { return leader(t, standby.addr) == 1 }, 2*time.Second, 100*time.Millisecond)

	// Kill the leader: the standby takes over within the lease TTL.
	killed := time.Now()
	require.NoError(t, current.p.Signal(syscall.SIGKILL))
	require.Eventually(t, func() bool { return leader(t, standby.addr) == 1 }, 3*time.Second+3*time.Second, 50*time.Millisecond)
	t.Logf("takeover %s after the leader was killed", time.Since(killed).Round(time.Millisecond))

	extra := gocql.UUID(uuid.New())
	for k := range 3 {
		cmds := []order.Command{order.CreateOrder{OrderID: extra.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}}, order.ConfirmOrder{}, order.ShipOrder{Carrier: "c", TrackingNumber: "t"}}
		_, err := orders.Handle(ctx, extra, cmds[k], eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()})
		require.NoError(t, err)
	}
	want[extra.String()] = 3
	require.Eventually(t, func() bool { return cons.complete(want) }, 30*time.Second, 100*time.Millisecond)
	cons.requireOrdered(t)
	t.Logf("records received: %d for %d events (duplicates after kills: %d)", cons.records(), 20003, cons.records()-20003)
}

var leaderLine = regexp.MustCompile(`(?m)^orderstream_lease_leader\{lease="relay"\} (\d)`)

func leader(t *testing.T, addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := leaderLine.FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// consumer reads both aggregate topics from the offsets they had when it
// started, recording the sequence header of every record per key.
type consumer struct {
	mu    sync.Mutex
	byKey map[string][]int64
	n     int
}

// privateTopics names a topic prefix of the test's own (the relay creates
// the topics) and deletes its topics when the test ends, so that the
// default topics a local stack's projectors read stay clean.
func privateTopics(t *testing.T) string {
	t.Helper()
	prefix := stacktest.UniqueName("relayfault")
	t.Cleanup(func() {
		k := stacktest.KafkaConfig()
		sc, err := k.Sarama("relay-test-admin")
		if err != nil {
			return
		}
		admin, err := sarama.NewClusterAdmin(k.Brokers, sc)
		if err != nil {
			return
		}
		_ = admin.DeleteTopic(record.TopicOf(prefix, "order"))
		_ = admin.DeleteTopic(record.TopicOf(prefix, "customer"))
		_ = admin.Close()
	})
	return prefix
}

func consumeFromNow(ctx context.Context, t *testing.T, prefix string) *consumer {
	t.Helper()
	k := stacktest.KafkaConfig()
	sc, err := k.Sarama("relay-fault-consumer")
	require.NoError(t, err)
	client, err := sarama.NewClient(k.Brokers, sc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	c, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	cons := &consumer{byKey: map[string][]int64{}}
	for _, topic := range []string{record.TopicOf(prefix, "order"), record.TopicOf(prefix, "customer")} {
		parts, err := client.Partitions(topic)
		require.NoError(t, err)
		for _, p := range parts {
			// A topic the relay just created may not have its leaders
			// everywhere yet: ask again until it answers.
			var offset int64
			require.Eventually(t, func() bool {
				_ = client.RefreshMetadata(topic)
				offset, err = client.GetOffset(topic, p, sarama.OffsetNewest)
				return err == nil
			}, 15*time.Second, 100*time.Millisecond, "partition %d of %s has no leader: %v", p, topic, err)
			pc, err := c.ConsumePartition(topic, p, offset)
			require.NoError(t, err)
			t.Cleanup(func() { _ = pc.Close() })
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case msg, ok := <-pc.Messages():
						if !ok {
							return
						}
						var seq int64
						for _, h := range msg.Headers {
							if string(h.Key) == record.HeaderSequence {
								seq, _ = strconv.ParseInt(string(h.Value), 10, 64)
							}
						}
						cons.mu.Lock()
						cons.byKey[string(msg.Key)] = append(cons.byKey[string(msg.Key)], seq)
						cons.n++
						cons.mu.Unlock()
					}
				}
			}()
		}
	}
	return cons
}

func (c *consumer) records() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func (c *consumer) completeKeys(want map[string]int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for key, v := range want {
		var top int64
		for _, s := range c.byKey[key] {
			top = max(top, s)
		}
		if top == v {
			n++
		}
	}
	return n
}

func (c *consumer) complete(want map[string]int64) bool { return c.completeKeys(want) == len(want) }

// requireOrdered checks that every key's records, duplicates dropped, are
// 1, 2, 3, … : a record is either the next sequence or one seen before.
func (c *consumer) requireOrdered(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, seqs := range c.byKey {
		var top int64
		for _, s := range seqs {
			if s > top {
				require.Equal(t, top+1, s, "key %s skipped ahead: %v", key, seqs)
				top = s
			}
		}
	}
}
