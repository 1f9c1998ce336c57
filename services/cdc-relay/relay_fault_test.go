//go:build fault

package main

// Fault tests stop shared servers of the local stack, so they are built
// only with -tags fault and run alone, after every other test (make test's
// second phase).

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Kafka stopped for 30 s during load: the breaker opens, nothing is
// dead-lettered, and every event arrives once Kafka is back.
func TestFaultKafkaDownForThirtySeconds(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	session, c := stacktest.PrivateKeyspace(t, "relaykafka_")
	keyspace := c.Keyspace
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 10}, zerolog.Nop(), nil)
	require.NoError(t, err)

	bin := servicetest.Build(t)
	prefix := privateTopics(t)
	addr := servicetest.FreeAddr(t)
	p := servicetest.Start(t, bin, []string{
		"ORDERSTREAM_ADMIN_ADDR=" + addr,
		"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
		"ORDERSTREAM_CQL_KEYSPACE=" + keyspace,
		"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ","),
		"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + prefix,
	})
	servicetest.WaitHTTP(t, p, "http://"+addr+"/readyz", http.StatusOK, 60*time.Second)
	cons := consumeFromNow(ctx, t, prefix)

	stack := func(args ...string) {
		cmd := exec.CommandContext(ctx, filepath.Join(stacktest.RepoRoot(t), "scripts", "stack.sh"), args...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "stack.sh %v: %s", args, out)
	}
	t.Cleanup(func() {
		_ = exec.Command(filepath.Join(stacktest.RepoRoot(t), "scripts", "stack.sh"), "start", "kafka").Run()
	})

	eur, _ := value.NewCurrency("EUR")
	price, _ := value.NewMoney(100, eur)
	item, _ := value.NewOrderItem("sku", 1, price)
	want := map[string]int64{}
	var mu sync.Mutex
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				id := gocql.UUID(uuid.New())
				cmds := []order.Command{order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}}, order.ConfirmOrder{}}
				for _, cmd := range cmds {
					_, err := orders.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()})
					require.NoError(t, err)
				}
				mu.Lock()
				want[id.String()] = 2
				mu.Unlock()
			}
		})
	}

	time.Sleep(3 * time.Second) // the scenario: load runs before the outage
	stack("stop", "kafka")
	stopped := time.Now()
	require.Eventually(t, func() bool { return metric(addr, "orderstream_circuit_breaker_state") == "2" }, 30*time.Second, 200*time.Millisecond,
		"the producer's breaker opens while Kafka is down")
	time.Sleep(time.Until(stopped.Add(30 * time.Second))) // the scenario: the outage lasts 30 s
	stack("start", "kafka")
	time.Sleep(3 * time.Second) // the scenario: load goes on after the outage
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	require.Eventually(t, func() bool { return cons.complete(want) }, 2*time.Minute, 200*time.Millisecond,
		"%d of %d orders complete on the topic after Kafka came back", cons.completeKeys(want), len(want))
	cons.requireOrdered(t)
	var dead int64
	require.NoError(t, session.Query(`SELECT COUNT(*) FROM dead_letter_queue`).Scan(&dead))
	require.Zero(t, dead, "an outage shorter than the retry budget dead-letters nothing")
	require.Eventually(t, func() bool { return metric(addr, "orderstream_circuit_breaker_state") == "0" }, 30*time.Second, 200*time.Millisecond,
		"the breaker closes again once Kafka answers")
	t.Logf("%d orders, %d records; the breaker opened during the outage and closed after it", len(want), cons.records())
}

func metric(addr, name string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}
