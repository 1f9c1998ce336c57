package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// runPipeline runs, in process and until the test ends, the relay and the
// order-read-model projector on topics of the test's own.
func (e *env) runPipeline(ctx context.Context, t *testing.T) {
	t.Helper()
	kc := stacktest.RequireKafka(t)
	prefix := relaytest.Topics(ctx, t, kc, "qsit", 3)
	relaytest.Run(ctx, t, e.session, e.store, kc, prefix)
	ctx, cancel := context.WithCancel(ctx)

	pcfg := projector.DefaultConfig()
	pcfg.Group = stacktest.UniqueName("query-it-")
	pcfg.TopicPrefix = prefix
	p, err := projector.New(pcfg, readmodel.OrderReadModel(), e.session, e.store, zerolog.Nop(), nil)
	require.NoError(t, err)
	psc, err := kc.Sarama("query-it-projector")
	require.NoError(t, err)
	projDone := make(chan error, 1)
	go func() { projDone <- p.Run(ctx, kc.Brokers, psc) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-projDone)
	})
}

// Read-your-writes through the real pipeline (commit → relay → Kafka →
// projector → order_read_model): 1,000 times, a command followed at once
// by a read with min_version = the version it answered returns exactly
// that version.
func TestReadYourWritesThroughPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline 1,000 times")
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e.runPipeline(ctx, t)
	customerID := e.registerCustomer()

	const (
		workers         = 4
		perWorker       = 250
		commandsPerOrdr = 10 // CreateOrder, then UpdateItems
	)
	var (
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for range workers {
		wg.Go(func() {
			var (
				id  gocql.UUID
				own []time.Duration
			)
			for i := range perWorker {
				var cmd order.Command
				if i%commandsPerOrdr == 0 {
					id = gocql.UUID(uuid.New())
					cmd = order.CreateOrder{OrderID: id.String(), CustomerID: customerID.String(), Items: items(t, "sku-1", 1, 100)}
				} else {
					cmd = order.UpdateItems{Items: items(t, "sku-1", i%commandsPerOrdr+1, 100)}
				}
				res, err := e.orders.Handle(ctx, id, cmd, meta())
				if err != nil {
					errs <- err
					return
				}
				start := time.Now()
				a := e.get(fmt.Sprintf("/v1/orders/%s?min_version=%d", id, res.Version))
				own = append(own, time.Since(start))
				if a.Status != 200 || a.Body["version"] != float64(res.Version) {
					errs <- fmt.Errorf("order %s version %d: %d %s", id, res.Version, a.Status, a.Raw)
					return
				}
			}
			mu.Lock()
			lat = append(lat, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, lat, workers*perWorker)
	slices.Sort(lat)
	t.Logf("read-your-writes: %d reads, wait p50 %s, p99 %s, max %s", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	require.Zero(t, e.waitCount("order", "timeout"))
}
