// Command relaybench measures the relay against a bare sarama producer
// sending the same records, side by side in one run, and prints tables with
// the ratios (`make bench`).
//
// Throughput, from a backlog committed before the relay starts (default
// 100,000 events on 10,000 orders, ten events each):
//   - bare: an idempotent, acks=all SyncProducer, configured as the relay's,
//     with as many senders as the relay has workers, each sending its
//     aggregates' records one at a time, the next after the broker
//     acknowledged the one before. That is the relay's own discipline
//     (it keeps per-key order across broker failures), without the relay:
//     the records are read from event_store and encoded before the clock
//     starts. The ratio is taken against this row.
//   - relay: the relay with the scan source on that backlog, from its start
//     until the last record is acknowledged: scans, reads, encoding,
//     publishing and recording published_sequence.
//   - for reference, an AsyncProducer pipelining every record, which does
//     not wait for one record's acknowledgement before sending the next of
//     the same key; the relay gives that up on purpose (DESIGN.md).
//
// Latency, with commits at a steady rate on the same 10,000 orders and a
// consumer reading the topic: the time from a commit's return to the
// record's arrival at the consumer.
//   - bare: the committing goroutine produces the record itself right after
//     the commit (a dual write, which can lose events and which the relay
//     exists to replace): the floor of any commit-then-publish path.
//   - relay: the scan source finds the commit and publishes it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/cmd/internal/benchkit"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/relay"
)

var (
	hosts      = flag.String("hosts", "127.0.0.1", "CQL hosts")
	brokers    = flag.String("brokers", "127.0.0.1:9092", "Kafka brokers")
	keyspace   = flag.String("keyspace", "orderstream_bench_relay", "keyspace (dropped, created and migrated)")
	aggregates = flag.Int("aggregates", 10_000, "orders in the backlog and in the latency phase")
	backlog    = flag.Int("events", 100_000, "events in the backlog, spread evenly over the orders")
	workers    = flag.Int("workers", relay.DefaultConfig().Workers, "relay workers")
	inFlight   = flag.Int("in-flight", relay.DefaultConfig().MaxInFlight, "records in flight at most: the relay's max_in_flight and the bare producer's senders")
	rate       = flag.Int("rate", 200, "commits per second in the latency phase")
	duration   = flag.Duration("duration", 15*time.Second, "length of each latency row")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the relay's drain of the backlog to this file")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

type bench struct {
	session *gocql.Session
	store   *eventstore.Store
	kc      kafka.Config
	ids     []gocql.UUID
	version []int64 // per order, as committed by the bench
}

func run() error {
	ctx := context.Background()
	if *aggregates < 1 || *backlog < *aggregates {
		return fmt.Errorf("-events (%d) must be at least -aggregates (%d), which must be positive", *backlog, *aggregates)
	}
	session, err := benchkit.Open(ctx, *hosts, *keyspace, true)
	if err != nil {
		return err
	}
	defer session.Close()
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	if err != nil {
		return err
	}
	kc := kafka.DefaultConfig()
	kc.Brokers = strings.Split(*brokers, ",")
	cleanup, err := benchkit.Topics(ctx, kc, prefix, 12)
	if err != nil {
		return err
	}
	defer cleanup()
	b := &bench{session: session, store: store, kc: kc}

	perOrder := *backlog / *aggregates
	fmt.Fprintf(os.Stderr, "committing a backlog of %d events on %d orders\n", perOrder**aggregates, *aggregates)
	if err := b.fill(ctx, perOrder); err != nil {
		return err
	}
	records, err := b.records(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "warming up the producer")
	if _, err := sendSync(kc, records[:len(records)/20], *inFlight); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bare SyncProducer")
	bareSync, err := sendSync(kc, records, *inFlight)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bare AsyncProducer")
	bareAsync, err := sendAsync(kc, records)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bare read and send")
	readSend, err := b.readAndSend(ctx, *inFlight)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "relay on the backlog")
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	relayed, err := b.drain(ctx, bareSync.events)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	throughput := []result{bareSync, relayed, readSend, bareAsync}

	fmt.Fprintf(os.Stderr, "latency: commit, then produce directly, %d commits/s for %s\n", *rate, *duration)
	dual, err := b.latency(ctx, "commit, then produce in the same goroutine (floor)", true)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "latency: commit, relay (scan source), %d commits/s for %s\n", *rate, *duration)
	viaRelay, err := b.latency(ctx, fmt.Sprintf("commit → relay, scan source, %d orders", len(b.ids)), false)
	if err != nil {
		return err
	}
	printResults(throughput, []result{dual, viaRelay})
	return nil
}

// prefix names the bench's own topics, deleted at the end, so that its
// records never reach the default topics a local stack's projectors read.
var prefix = fmt.Sprintf("relaybench%d", time.Now().UnixNano())

// message is the relay's record of e, on the bench's topic.
func message(e eventstore.Event) (*sarama.ProducerMessage, error) {
	return record.Encode(e, prefix)
}

// fill commits perOrder events to each of the bench's orders, 64 commits
// at a time: an OrderCreated and then OrderItemsUpdated events.
func (b *bench) fill(ctx context.Context, perOrder int) error {
	b.ids = make([]gocql.UUID, *aggregates)
	b.version = make([]int64, *aggregates)
	next := atomic.Int64{}
	g, ctx := errgroup.WithContext(ctx)
	for range 64 {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(b.ids); i = int(next.Add(1) - 1) {
				b.ids[i] = gocql.UUID(uuid.New())
				evs := make([]eventstore.Event, 0, perOrder)
				evs = append(evs, orderEvent(order.OrderCreated{OrderID: b.ids[i].String(), CustomerID: uuid.NewString(), Items: items(1), Currency: eur}))
				for n := 1; len(evs) < perOrder; n++ {
					evs = append(evs, orderEvent(order.OrderItemsUpdated{Items: items(1 + n%3)}))
				}
				// Commits of at most 10 events, as commands make them.
				for len(evs) > 0 {
					chunk := evs[:min(10, len(evs))]
					v, err := b.store.Append(ctx, "order", b.ids[i], b.version[i], chunk)
					if err != nil {
						return err
					}
					b.version[i], evs = v, evs[len(chunk):]
				}
			}
			return nil
		})
	}
	return g.Wait()
}

var eur, _ = value.NewCurrency("EUR")

func items(n int) []value.OrderItem {
	out := make([]value.OrderItem, n)
	for i := range out {
		price, _ := value.NewMoney(int64(1000+i), eur)
		out[i], _ = value.NewOrderItem(fmt.Sprintf("sku-%d", i), int64(1+i), price)
	}
	return out
}

var upcasters = eventcodec.NewUpcasters()

func orderEvent(e order.Event) eventstore.Event {
	typ, data, err := eventcodec.OrderCodec{}.EncodeEvent(e)
	if err != nil {
		panic(err) // the bench's own events always encode
	}
	return eventstore.Event{
		AggregateType: "order", EventID: gocql.UUID(uuid.New()), Type: typ, Version: upcasters.Current(typ), Data: data,
		CausationID: uuid.NewString(), CorrelationID: "relaybench", OccurredAt: time.Now().UTC(),
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
}

// records reads the backlog back and encodes it as the relay would, per
// order in sequence order.
func (b *bench) records(ctx context.Context) ([][]*sarama.ProducerMessage, error) {
	out := make([][]*sarama.ProducerMessage, len(b.ids))
	next := atomic.Int64{}
	g, ctx := errgroup.WithContext(ctx)
	for range 16 {
		g.Go(func() error {
			for i := int(next.Add(1) - 1); i < len(b.ids); i = int(next.Add(1) - 1) {
				err := b.store.Events(ctx, b.ids[i], 0, b.version[i], func(e eventstore.Event) error {
					msg, err := message(e)
					out[i] = append(out[i], msg)
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	return out, g.Wait()
}

type result struct {
	name    string
	events  int
	elapsed time.Duration
	lat     []time.Duration // sorted; per record
	missing int
}

func (r result) perSecond() float64 { return float64(r.events) / r.elapsed.Seconds() }

// sendSync sends every order's records through one SyncProducer from
// senders goroutines, one record of an order at a time.
func sendSync(kc kafka.Config, records [][]*sarama.ProducerMessage, senders int) (result, error) {
	res, err := send(kc, len(records), senders, func(_ context.Context, i int) ([]*sarama.ProducerMessage, error) { return records[i], nil })
	res.name = fmt.Sprintf("bare SyncProducer, %d senders (1 in flight each)", senders)
	return res, err
}

// readAndSend is what any relay must do at the least: read each order's
// events from event_store, encode them, and send them one at a time.
func (b *bench) readAndSend(ctx context.Context, senders int) (result, error) {
	res, err := send(b.kc, len(b.ids), senders, func(ctx context.Context, i int) ([]*sarama.ProducerMessage, error) {
		var out []*sarama.ProducerMessage
		err := b.store.Events(ctx, b.ids[i], 0, b.version[i], func(e eventstore.Event) error {
			msg, err := message(e)
			out = append(out, msg)
			return err
		})
		return out, err
	})
	res.name = fmt.Sprintf("bare read from event_store, encode, send; %d senders", senders)
	return res, err
}

// send sends the records of n orders, got from records(i), through one
// SyncProducer from senders goroutines, one record of an order at a time.
func send(kc kafka.Config, n, senders int, records func(context.Context, int) ([]*sarama.ProducerMessage, error)) (result, error) {
	sc, err := kc.Sarama("relaybench-sync")
	if err != nil {
		return result{}, err
	}
	p, err := record.NewProducer(kc.Brokers, sc)
	if err != nil {
		return result{}, err
	}
	defer func() { _ = p.Close() }()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		lat   []time.Duration
		total int
		g     errgroup.Group
	)
	start := time.Now()
	for range senders {
		g.Go(func() error {
			var local []time.Duration
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				recs, err := records(context.Background(), i)
				if err != nil {
					return err
				}
				for _, tmpl := range recs {
					msg := *tmpl
					t0 := time.Now()
					if _, _, err := p.SendMessage(&msg); err != nil {
						return err
					}
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			lat, total = append(lat, local...), total+len(local)
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{events: total, elapsed: elapsed, lat: lat}, err
}

// sendAsync pipelines every record through one AsyncProducer.
func sendAsync(kc kafka.Config, records [][]*sarama.ProducerMessage) (result, error) {
	sc, err := kc.Sarama("relaybench-async")
	if err != nil {
		return result{}, err
	}
	record.ProducerConfig(sc)
	p, err := sarama.NewAsyncProducer(kc.Brokers, sc)
	if err != nil {
		return result{}, err
	}
	total := 0
	for _, r := range records {
		total += len(r)
	}
	start := time.Now()
	go func() {
		for _, rs := range records {
			for _, tmpl := range rs {
				msg := *tmpl
				p.Input() <- &msg
			}
		}
	}()
	var errs []error
	for n := 0; n < total; n++ {
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			errs = append(errs, err)
		}
	}
	elapsed := time.Since(start)
	_ = p.Close()
	return result{name: "bare AsyncProducer, pipelined (reference)", events: total - len(errs), elapsed: elapsed}, errors.Join(errs...)
}

// timedProducer times each acknowledged send of the relay's producer and
// says when a number of them is reached.
type timedProducer struct {
	relay.Producer
	mu     sync.Mutex
	lat    []time.Duration
	sent   atomic.Int64
	target int64
	done   chan struct{}
}

func (t *timedProducer) SendMessage(msg *sarama.ProducerMessage) (int32, int64, error) {
	t0 := time.Now()
	part, off, err := t.Producer.SendMessage(msg)
	if err == nil {
		d := time.Since(t0)
		t.mu.Lock()
		t.lat = append(t.lat, d)
		t.mu.Unlock()
		if t.sent.Add(1) == t.target {
			close(t.done)
		}
	}
	return part, off, err
}

// startRelay runs a relay on the bench's keyspace until stop is called.
func (b *bench) startRelay(ctx context.Context, target int64) (*timedProducer, *prometheus.Registry, func() error, error) {
	cfg := relay.DefaultConfig()
	cfg.Workers, cfg.MaxInFlight, cfg.TopicPrefix = *workers, *inFlight, prefix
	reg := prometheus.NewRegistry()
	var tp *timedProducer
	stop, err := benchkit.StartRelay(ctx, b.session, b.store, b.kc, cfg, reg, func(p relay.Producer) relay.Producer {
		tp = &timedProducer{Producer: p, target: target, done: make(chan struct{})}
		return tp
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return tp, reg, stop, nil
}

// drain runs the relay on the backlog until all of it is acknowledged.
func (b *bench) drain(ctx context.Context, events int) (result, error) {
	start := time.Now()
	tp, _, stop, err := b.startRelay(ctx, int64(events))
	if err != nil {
		return result{}, err
	}
	select {
	case <-tp.done:
	case <-time.After(10 * time.Minute):
		_ = stop()
		return result{}, fmt.Errorf("the relay published %d of %d events in 10 minutes", tp.sent.Load(), events)
	}
	elapsed := time.Since(start)
	if err := stop(); err != nil {
		return result{}, err
	}
	tp.mu.Lock()
	lat := slices.Clone(tp.lat)
	tp.mu.Unlock()
	slices.Sort(lat)
	return result{name: fmt.Sprintf("relay, scan source, %d workers, %d in flight", *workers, *inFlight), events: events, elapsed: elapsed, lat: lat}, nil
}

// latency commits one event at a time to random orders at the configured
// rate and measures, at a consumer of the orders topic, how long after the
// commit returned each record arrived. With direct set, the committing
// goroutine produces the record itself (and records published_sequence so
// that the relay does not publish it again later); otherwise a relay runs.
func (b *bench) latency(ctx context.Context, name string, direct bool) (result, error) {
	c, err := benchkit.StartArrivals(b.kc, record.TopicOf(prefix, "order"))
	if err != nil {
		return result{}, err
	}
	defer c.Close()

	var producer sarama.SyncProducer
	var stopRelay func() error
	var reg *prometheus.Registry
	if direct {
		sc, err := b.kc.Sarama("relaybench-direct")
		if err != nil {
			return result{}, err
		}
		if producer, err = record.NewProducer(b.kc.Brokers, sc); err != nil {
			return result{}, err
		}
		defer func() { _ = producer.Close() }()
	} else {
		_, r, stop, err := b.startRelay(ctx, -1)
		if err != nil {
			return result{}, err
		}
		stopRelay, reg = stop, r
	}

	// 16 committers, each owning every 16th order, so that an order is
	// never committed by two at once; together they make rate commits/s.
	const committers = 16
	interval := time.Duration(float64(time.Second) * committers / float64(*rate))
	deadline := time.Now().Add(*duration)
	g, gctx := errgroup.WithContext(ctx)
	for w := range committers {
		g.Go(func() error {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for time.Now().Before(deadline) {
				select {
				case <-gctx.Done():
					return gctx.Err()
				case <-tick.C:
				}
				i := w + committers*rng.IntN((len(b.ids)-w+committers-1)/committers)
				e := orderEvent(order.OrderItemsUpdated{Items: items(2)})
				v, err := b.store.Append(gctx, "order", b.ids[i], b.version[i], []eventstore.Event{e})
				if err != nil {
					return err
				}
				b.version[i] = v
				c.Expect(b.ids[i].String(), v, time.Now())
				if direct {
					e.AggregateID, e.Sequence = b.ids[i], v
					msg, err := message(e)
					if err == nil {
						_, _, err = producer.SendMessage(msg)
					}
					if err == nil {
						err = b.store.MarkPublished(gctx, b.ids[i], v)
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	err = g.Wait()
	lat, missing := c.Wait(30 * time.Second)
	if stopRelay != nil {
		err = errors.Join(err, stopRelay())
		if scan := benchkit.HistogramMean(reg, "orderstream_relay_scan_duration_seconds"); scan > 0 {
			fmt.Fprintf(os.Stderr, "relay: mean scan of %d orders took %s\n", len(b.ids), benchkit.Ms(scan))
		}
	}
	return result{name: name, events: len(lat), elapsed: *duration, lat: lat, missing: missing}, err
}

func printResults(throughput, latency []result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "throughput from a backlog\tevents\tseconds\tevents/s\tsend p50\tsend p99\tevents/s ×bare\t")
	base := throughput[0]
	for _, r := range throughput {
		p50, p99 := "–", "–"
		if len(r.lat) > 0 {
			p50, p99 = benchkit.Ms(benchkit.Pct(r.lat, .5)), benchkit.Ms(benchkit.Pct(r.lat, .99))
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.0f\t%s\t%s\t%.2f\t\n", r.name, r.events, r.elapsed.Seconds(), r.perSecond(), p50, p99, r.perSecond()/base.perSecond())
	}
	_ = w.Flush()
	fmt.Println()

	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "commit → record at a consumer\trecords\tmissing\tp50\tp99\tmax\tp50 ×bare\tp99 ×bare\t")
	lbase := latency[0]
	for _, r := range latency {
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\t%s\t%.2f\t%.2f\t\n", r.name, r.events, r.missing,
			benchkit.Ms(benchkit.Pct(r.lat, .5)), benchkit.Ms(benchkit.Pct(r.lat, .99)), benchkit.Ms(benchkit.Pct(r.lat, 1)),
			benchkit.Ratio(benchkit.Pct(r.lat, .5), benchkit.Pct(lbase.lat, .5)), benchkit.Ratio(benchkit.Pct(r.lat, .99), benchkit.Pct(lbase.lat, .99)))
	}
	_ = w.Flush()
	fmt.Println()
	benchkit.Check("relay events/s / bare SyncProducer events/s", throughput[1].perSecond()/base.perSecond(), 0.8, false)
	fmt.Printf("%-66s %.2f\n", "relay events/s / bare read, encode and send events/s", throughput[1].perSecond()/throughput[2].perSecond())
}
