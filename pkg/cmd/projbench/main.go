// Command projbench measures the projectors (`make bench`), side by side
// with bare baselines in the same run, and prints tables with the ratios.
//
// Throughput: a backlog of events (from the load generator, on private
// topics) is applied by each projector from a new consumer group, until
// every event is applied. The baseline for each is bare: the same view's
// Fold and Write with the checkpoint, written per event as the projector
// writes them (projector.Checkpoints: the rows, then the checkpoint; one
// logged batch only where a row moves to another key), from as many
// goroutines as the topic has partitions, with no consumer, no checkpoint
// read and no gap check.
//
// Latency: with the relay (scan source) and the four projectors running on
// -aggregates aggregates, new orders are committed at -rate per second; for
// each, the time from the commit's return to (a) its record's arrival at a
// consumer of the topic and (b) the order_read_model row being written (the
// projector's write acknowledged: from then on a read sees it). (a) is
// where the time goes before the projector; (b) − (a) is the projector's.
//
// Rebuild: each view rebuilt over the backlog's aggregates into a new
// generation (the zero-downtime rebuild), against the rebuild before
// generations (truncate the live tables and replay) as the baseline
// (rebuild.go). -rebuild-only measures just that, without publishing the
// backlog: `-rebuild-only -aggregates 100000 -commands 200000` for the
// 100,000-aggregate row.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/cmd/internal/benchkit"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
	"github.com/orderstream/orderstream/pkg/repository"
)

var (
	hosts       = flag.String("hosts", "127.0.0.1", "CQL hosts")
	brokers     = flag.String("brokers", "127.0.0.1:9092", "Kafka brokers")
	keyspace    = flag.String("keyspace", "orderstream_bench_proj", "keyspace (dropped, created and migrated)")
	commands    = flag.Int("commands", 20_000, "commands in the backlog")
	aggregates  = flag.Int("aggregates", 10_000, "aggregates the backlog's commands go to")
	partitions  = flag.Int("partitions", 12, "partitions of the bench's topics")
	rate        = flag.Int("rate", 100, "new orders per second in the latency phase")
	duration    = flag.Duration("duration", 15*time.Second, "length of the latency phase")
	rebuild     = flag.Bool("rebuild", true, "measure each view's rebuild (new generation against truncate and replay)")
	rebuildOnly = flag.Bool("rebuild-only", false, "measure only the rebuilds (no relay, projector throughput or latency phase)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "projbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	session   *gocql.Session
	store     *eventstore.Store
	orders    *repository.Orders
	customers *repository.Customers
	kc        kafka.Config
	prefix    string
}

func run() error {
	ctx := context.Background()
	session, err := benchkit.Open(ctx, *hosts, *keyspace, true)
	if err != nil {
		return err
	}
	defer session.Close()
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	if err != nil {
		return err
	}
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 10}
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	if err != nil {
		return err
	}
	customers, err := repository.NewCustomers(store, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	if err != nil {
		return err
	}
	kc := kafka.DefaultConfig()
	kc.Brokers = strings.Split(*brokers, ",")
	b := &bench{session: session, store: store, orders: orders, customers: customers, kc: kc, prefix: fmt.Sprintf("bench%d", time.Now().UnixNano())}
	cleanup, err := benchkit.Topics(ctx, kc, b.prefix, int32(*partitions))
	if err != nil {
		return err
	}
	defer cleanup()

	fmt.Fprintf(os.Stderr, "backlog: %d commands on %d aggregates\n", *commands, *aggregates)
	if _, err := loadgen.Run(ctx, loadgen.Config{Commands: *commands, Aggregates: *aggregates, Workers: 32, Seed: 1}, orders, customers); err != nil {
		return err
	}
	if *rebuildOnly {
		rb, err := rebuilds(ctx, b)
		if err != nil {
			return err
		}
		printRebuilds(rb)
		return nil
	}
	counts, err := b.countEvents(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "publishing %d order and %d customer events\n", counts["order"], counts["customer"])
	stopRelay, err := b.startRelay(ctx, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if err := b.waitPublished(ctx); err != nil {
		return err
	}
	stopRelay()

	var rows []row
	for _, v := range []struct {
		name string
		run  func() (row, error)
	}{
		{"order-read-model", func() (row, error) { return throughput(ctx, b, readmodel.OrderReadModel(), counts["order"]) }},
		{"orders-by-customer", func() (row, error) { return throughput(ctx, b, readmodel.OrdersByCustomer(), counts["order"]) }},
		{"orders-by-status", func() (row, error) { return throughput(ctx, b, readmodel.OrdersByStatus(), counts["order"]) }},
		{"customer-read-model", func() (row, error) { return throughput(ctx, b, readmodel.CustomerReadModel(), counts["customer"]) }},
	} {
		fmt.Fprintf(os.Stderr, "throughput: %s\n", v.name)
		r, err := v.run()
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}

	fmt.Fprintf(os.Stderr, "latency: %d new orders/s for %s with the relay's scan source over %d aggregates\n", *rate, *duration, *aggregates)
	lat, err := b.latency(ctx, counts["order"])
	if err != nil {
		return err
	}
	var rb []rebuildRow
	if *rebuild {
		if rb, err = rebuilds(ctx, b); err != nil {
			return err
		}
	}
	print(rows, lat)
	if len(rb) > 0 {
		fmt.Println()
		printRebuilds(rb)
	}
	return nil
}

func (b *bench) countEvents(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := b.store.Heads(ctx, func(h eventstore.Head) error {
		out[h.AggregateType] += h.Current
		return nil
	})
	return out, err
}

func (b *bench) waitPublished(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		unpublished, err := b.store.Unpublished(ctx)
		if err != nil {
			return err
		}
		if unpublished == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the relay did not publish the backlog in 10 minutes")
}

type row struct {
	name          string
	events        int64
	elapsed, bare time.Duration
}

// throughput applies the backlog with a projector from a new consumer
// group (its tables and checkpoints are empty: the keyspace is fresh and
// each view runs once), then the same events bare.
func throughput[S any](ctx context.Context, b *bench, view projector.View[S], events int64) (row, error) {
	cfg := projector.DefaultConfig()
	cfg.Group = fmt.Sprintf("projbench-%s-%d", view.Name, time.Now().UnixNano())
	cfg.TopicPrefix = b.prefix
	p, err := projector.New(cfg, view, b.session, b.store, zerolog.New(os.Stderr).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	if err != nil {
		return row{}, err
	}
	sc, err := b.kc.Sarama("projbench-" + view.Name)
	if err != nil {
		return row{}, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(cctx, b.kc.Brokers, sc) }()
	applied := p.Metrics().Applied
	for testutil.ToFloat64(applied) < float64(events) {
		select {
		case err := <-done:
			cancel()
			return row{}, fmt.Errorf("%s stopped: %w", view.Name, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			cancel()
			return row{}, fmt.Errorf("%s applied %.0f of %d events in 10 minutes", view.Name, testutil.ToFloat64(applied), events)
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		return row{}, err
	}

	bare, err := bareApply(ctx, b, view)
	if err != nil {
		return row{}, err
	}
	return row{name: view.Name, events: events, elapsed: elapsed, bare: bare}, nil
}

// bareApply writes what the projector writes, without the projector: per
// event, the view's rows and the checkpoint through the projector's
// Checkpoints.Commit. The events are read and folded before the clock
// starts.
func bareApply[S any](ctx context.Context, b *bench, view projector.View[S]) (time.Duration, error) {
	type step struct {
		id      gocql.UUID
		old, s  S
		existed bool
		seq     int64
		state   []byte
	}
	var work [][]step
	var ids []gocql.UUID
	if err := b.store.Heads(ctx, func(h eventstore.Head) error {
		if h.AggregateType == view.AggregateType {
			ids = append(ids, h.AggregateID)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	up := eventcodec.NewUpcasters()
	for _, id := range ids {
		var (
			steps   []step
			s       S
			existed bool
		)
		err := b.store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
			e, err := up.Upcast(e)
			if err != nil {
				return err
			}
			next, err := view.Fold(s, e)
			if err != nil {
				return err
			}
			state, err := json.Marshal(next)
			if err != nil {
				return err
			}
			st := step{id: id, old: s, s: next, existed: existed, seq: e.Sequence, state: state}
			steps = append(steps, st)
			s, existed = next, true
			return nil
		})
		if err != nil {
			return 0, err
		}
		work = append(work, steps)
	}
	var next atomic.Int64
	cps := projector.NewCheckpoints(b.session)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range *partitions {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(work); i = int(next.Add(1) - 1) {
				for _, st := range work[i] {
					if err := cps.Commit(gctx, view.Name+"-bare", st.id, st.seq, string(st.state), func(batch *gocql.Batch) error {
						return view.Write(batch, st.id, st.old, st.existed, st.s, st.seq)
					}); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

type latencies struct {
	record, visible []time.Duration
	missing         int
	scan            time.Duration
}

// latency commits new orders at the configured rate with the relay and the
// order_read_model projector running, and measures commit → record and
// commit → row written.
func (b *bench) latency(ctx context.Context, backlog int64) (latencies, error) {
	arrivals, err := benchkit.StartArrivals(b.kc, record.TopicOf(b.prefix, "order"))
	if err != nil {
		return latencies{}, err
	}
	defer arrivals.Close()

	cfg := projector.DefaultConfig()
	cfg.Group = fmt.Sprintf("projbench-latency-%d", time.Now().UnixNano())
	cfg.TopicPrefix = b.prefix
	p, err := projector.New(cfg, readmodel.OrderReadModel(), b.session, b.store, zerolog.New(os.Stderr).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	if err != nil {
		return latencies{}, err
	}
	var (
		mu        sync.Mutex
		committed = map[gocql.UUID]time.Time{}
		visible   []time.Duration
	)
	p.OnApplied(func(id gocql.UUID, _ int64) {
		now := time.Now()
		mu.Lock()
		if t, ok := committed[id]; ok {
			visible = append(visible, now.Sub(t))
			if os.Getenv("PROJBENCH_TRACE") != "" && now.Sub(t) > 200*time.Millisecond {
				fmt.Fprintf(os.Stderr, "slow: committed %s visible after %s\n", t.Format("15:04:05.000"), now.Sub(t))
			}
			delete(committed, id)
		}
		mu.Unlock()
	})
	sc, err := b.kc.Sarama("projbench-latency")
	if err != nil {
		return latencies{}, err
	}
	// The group starts at the topic's oldest record: let it apply the
	// backlog (all skipped: checkpoints exist) to the end before measuring.
	pctx, stopProjector := context.WithCancel(ctx)
	pdone := make(chan error, 1)
	go func() { pdone <- p.Run(pctx, b.kc.Brokers, sc) }()
	defer func() {
		stopProjector()
		<-pdone
	}()
	skipped := p.Metrics().Skipped
	for p.Ready(ctx) != nil || p.Lag() != 0 || testutil.ToFloat64(skipped) < float64(backlog) {
		time.Sleep(50 * time.Millisecond)
	}
	relayReg := prometheus.NewRegistry()
	stopRelay, err := b.startRelay(ctx, relayReg)
	if err != nil {
		return latencies{}, err
	}
	defer stopRelay()
	// Let the relay's first full scan (at start) pass: what is measured is
	// the steady state.
	for benchkit.HistogramMean(relayReg, "orderstream_relay_scan_duration_seconds") == 0 {
		time.Sleep(50 * time.Millisecond)
	}

	eur, _ := value.NewCurrency("EUR")
	price, _ := value.NewMoney(1999, eur)
	item, _ := value.NewOrderItem("sku", 1, price)
	const committers = 8
	interval := time.Duration(float64(time.Second) * committers / float64(*rate))
	deadline := time.Now().Add(*duration)
	g, gctx := errgroup.WithContext(ctx)
	for range committers {
		g.Go(func() error {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				select {
				case <-gctx.Done():
					return gctx.Err()
				case <-tick.C:
				}
				id := gocql.UUID(uuid.New())
				_, err := b.orders.Handle(gctx, id, order.CreateOrder{OrderID: id.String(), CustomerID: uuid.NewString(), Items: []value.OrderItem{item}},
					eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: "projbench", Now: time.Now()})
				if err != nil {
					return err
				}
				now := time.Now()
				mu.Lock()
				committed[id] = now
				mu.Unlock()
				arrivals.Expect(id.String(), 1, now)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return latencies{}, err
	}
	record, missing := arrivals.Wait(30 * time.Second)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(committed)
		mu.Unlock()
		if n == 0 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(visible)
	return latencies{record: record, visible: visible, missing: missing + len(committed), scan: benchkit.HistogramMean(relayReg, "orderstream_relay_scan_duration_seconds")}, nil
}

// startRelay runs the relay on the bench's topics until the returned stop.
func (b *bench) startRelay(ctx context.Context, reg *prometheus.Registry) (func(), error) {
	cfg := relay.DefaultConfig()
	cfg.TopicPrefix = b.prefix
	stop, err := benchkit.StartRelay(ctx, b.session, b.store, b.kc, cfg, reg, nil)
	if err != nil {
		return nil, err
	}
	return func() { _ = stop() }, nil
}

func print(rows []row, lat latencies) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "projector, from a backlog\tevents\tseconds\tevents/s\tbare events/s\t×bare\t")
	for _, r := range rows {
		ps, bare := float64(r.events)/r.elapsed.Seconds(), float64(r.events)/r.bare.Seconds()
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t%.0f\t%.2f\t\n", r.name, r.events, r.elapsed.Seconds(), ps, bare, ps/bare)
	}
	_ = w.Flush()
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "commit → …\tsamples\tp50\tp99\tmax\t")
	fmt.Fprintf(w, "record at a consumer (relay, scan source)\t%d\t%s\t%s\t%s\t\n", len(lat.record),
		benchkit.Ms(benchkit.Pct(lat.record, .5)), benchkit.Ms(benchkit.Pct(lat.record, .99)), benchkit.Ms(benchkit.Pct(lat.record, 1)))
	fmt.Fprintf(w, "order_read_model row written (relay + projector)\t%d\t%s\t%s\t%s\t\n", len(lat.visible),
		benchkit.Ms(benchkit.Pct(lat.visible, .5)), benchkit.Ms(benchkit.Pct(lat.visible, .99)), benchkit.Ms(benchkit.Pct(lat.visible, 1)))
	_ = w.Flush()
	fmt.Printf("\nnot seen within 30 s: %d; mean relay scan (including the publishing it starts): %s over %d aggregates\n", lat.missing, benchkit.Ms(lat.scan), *aggregates)
	fmt.Printf("projector's share of p50: %s (row written p50 − record p50)\n", benchkit.Ms(benchkit.Pct(lat.visible, .5)-benchkit.Pct(lat.record, .5)))
	benchkit.Check("commit → row written p50, ms", float64(benchkit.Pct(lat.visible, .5).Microseconds())/1000, 50, true)
	benchkit.Check("commit → row written p99, ms", float64(benchkit.Pct(lat.visible, .99).Microseconds())/1000, 200, true)
}
