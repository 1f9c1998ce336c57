// Command storebench measures the event store's commit against the
// physical floor of one Paxos round on the same server, side by side in one
// run, and prints a table with the ratios (`make bench`).
//
// Rows: a bare prepared single-row INSERT … IF NOT EXISTS of one event row
// (the same columns and bytes as an event_store row, without the static
// columns), which is the floor the ratios are taken against, and for
// reference the same with a tiny row (uuid, bigint); a commit of one
// event to a new aggregate (INSERT of the static columns IF NOT EXISTS plus
// the event row); a commit of one event to an existing aggregate (UPDATE …
// IF current_sequence = ? plus the event row); and the same with ten
// events. Each at 1 and at 64 concurrent clients, each client on its own
// aggregates, so that what is measured is the commit and not contention;
// a client moves to a new aggregate every -max-events events (default 50,
// well above a typical order's or customer's stream).
package main

import (
	"context"
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
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cmd/internal/benchkit"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

var maxEvents = flag.Int("max-events", 50, "events per aggregate before a client moves to a new one (next-version rows)")

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

type result struct {
	name    string
	clients int
	ops     int
	elapsed time.Duration
	lat     []time.Duration
}

func (r result) pct(p float64) time.Duration { return benchkit.Pct(r.lat, p) }

func (r result) throughput() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func run() error {
	var (
		hosts    = flag.String("hosts", "127.0.0.1", "CQL hosts")
		keyspace = flag.String("keyspace", "orderstream_bench", "keyspace (created and migrated)")
		duration = flag.Duration("duration", 9*time.Second, "measuring time per row, split over the rounds")
		rounds   = flag.Int("rounds", 3, "rounds over which the rows are interleaved")
		warmup   = flag.Duration("warmup", 2*time.Second, "warm-up time per row, not measured")
	)
	flag.Parse()
	ctx := context.Background()

	session, err := benchkit.Open(ctx, *hosts, *keyspace, false)
	if err != nil {
		return err
	}
	defer session.Close()
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS bench_lwt (id uuid PRIMARY KEY, v bigint)`,
		// One event row, as event_store holds it, with no static columns.
		`CREATE TABLE IF NOT EXISTS bench_lwt_event (aggregate_id uuid, sequence_number bigint, event_id uuid, event_type text, event_version int, event_data text, causation_id text, correlation_id text, timestamp timestamp, trace_context frozen<map<text, text>>, PRIMARY KEY (aggregate_id, sequence_number))`,
	} {
		if err := session.Query(ddl).Exec(); err != nil {
			return fmt.Errorf("creating bench tables: %w", err)
		}
	}
	store, err := eventstore.New(session, eventstore.DefaultConfig(), prometheus.NewRegistry())
	if err != nil {
		return err
	}

	bareTiny := func(ctx context.Context, _ *clientState) error {
		applied, err := session.Query(`INSERT INTO bench_lwt (id, v) VALUES (?, ?) IF NOT EXISTS`, gocql.UUID(uuid.New()), int64(1)).
			WithContext(ctx).SerialConsistency(gocql.LocalSerial).ScanCAS()
		if err == nil && !applied {
			err = fmt.Errorf("bare LWT not applied")
		}
		return err
	}
	bare := func(ctx context.Context, _ *clientState) error {
		e := events(1)[0]
		applied, err := session.Query(`INSERT INTO bench_lwt_event (aggregate_id, sequence_number, event_id, event_type, event_version, event_data, causation_id, correlation_id, timestamp, trace_context) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
			gocql.UUID(uuid.New()), int64(1), e.EventID, e.Type, e.Version, string(e.Data), e.CausationID, e.CorrelationID, e.OccurredAt, e.TraceContext).
			WithContext(ctx).SerialConsistency(gocql.LocalSerial).ScanCAS()
		if err == nil && !applied {
			err = fmt.Errorf("bare LWT not applied")
		}
		return err
	}
	commitNew := func(n int) op {
		return func(ctx context.Context, _ *clientState) error {
			_, err := store.Append(ctx, "bench", gocql.UUID(uuid.New()), 0, events(n))
			return err
		}
	}
	commitNext := func(n int) op {
		return func(ctx context.Context, c *clientState) error {
			if c.id == (gocql.UUID{}) || c.version > int64(*maxEvents) {
				c.id, c.version = gocql.UUID(uuid.New()), 0
			}
			v, err := store.Append(ctx, "bench", c.id, c.version, events(n))
			c.version = v
			return err
		}
	}

	type row struct {
		name string
		op   op
	}
	rows := []row{
		{"bare LWT, tiny row (reference)", bareTiny},
		{"bare LWT INSERT IF NOT EXISTS", bare},
		{"commit 1 event, new aggregate", commitNew(1)},
		{"commit 1 event, next version", commitNext(1)},
		{"commit 10 events, next version", commitNext(10)},
	}
	// Rows are interleaved over several rounds, so that drift in the
	// machine's load (compaction, other processes) touches every row alike.
	var results []result
	for _, clients := range []int{1, 64} {
		for _, r := range rows {
			measure(ctx, r.name, clients, *warmup, r.op) // warm-up, not counted
		}
		merged := make([]result, len(rows))
		for round := range *rounds {
			for i, r := range rows {
				res := measure(ctx, r.name, clients, *duration/time.Duration(*rounds), r.op)
				fmt.Fprintf(os.Stderr, "round %d: %-34s %2d clients: %6d ops\n", round+1, r.name, clients, res.ops)
				merged[i].name, merged[i].clients = res.name, res.clients
				merged[i].ops += res.ops
				merged[i].elapsed += res.elapsed
				merged[i].lat = append(merged[i].lat, res.lat...)
			}
		}
		for _, m := range merged {
			slices.Sort(m.lat)
			results = append(results, m)
		}
	}
	loads, err := loadTimes(ctx, session)
	if err != nil {
		return err
	}
	print(results, loads)
	return nil
}

type clientState struct {
	id      gocql.UUID
	version int64
}

type op func(context.Context, *clientState) error

func events(n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = eventstore.Event{
			EventID: gocql.UUID(uuid.New()), Type: "OrderConfirmed", Version: 1,
			Data:        []byte(`{"orderId":"0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11","items":[{"productId":"sku-1","quantity":2,"unitPrice":{"amountMinor":1999,"currency":"EUR"}}]}`),
			CausationID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", CorrelationID: "bench",
			OccurredAt: time.Now().UTC(), TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		}
	}
	return out
}

func measure(ctx context.Context, name string, clients int, d time.Duration, f op) result {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		ops   atomic.Int64
		errs  atomic.Int64
		wg    sync.WaitGroup
		start = time.Now()
		stop  = start.Add(d)
	)
	for range clients {
		wg.Go(func() {
			var local []time.Duration
			st := &clientState{}
			for time.Now().Before(stop) {
				t0 := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := f(cctx, st)
				cancel()
				if err != nil {
					errs.Add(1)
					st.id = gocql.UUID{}
					continue
				}
				local = append(local, time.Since(t0))
				ops.Add(1)
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := errs.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "%s, %d clients: %d errors\n", name, clients, n)
	}
	slices.Sort(lat)
	return result{name: name, clients: clients, ops: int(ops.Load()), elapsed: time.Since(start), lat: lat}
}

type loadResult struct {
	name string
	p50  time.Duration
}

// loadTimes measures loading an aggregate of 1,000 events with and
// without a snapshot at version 1,000.
func loadTimes(ctx context.Context, session *gocql.Session) ([]loadResult, error) {
	var out []loadResult
	for _, snapEvery := range []int{0, 1000} {
		cfg := eventstore.DefaultConfig()
		cfg.SnapshotEvery = snapEvery
		store, err := eventstore.New(session, cfg, nil)
		if err != nil {
			return nil, err
		}
		repo, err := eventstore.NewRepository(store, benchAggregate, benchCodec{}, eventstore.NewUpcasters(),
			eventstore.RepositoryConfig{}, zerolog.Nop(), nil)
		if err != nil {
			return nil, err
		}
		id := gocql.UUID(uuid.New())
		for range 100 {
			if _, err := repo.Handle(ctx, id, 10, eventstore.Metadata{Now: time.Now()}); err != nil {
				return nil, err
			}
		}
		var lat []time.Duration
		for range 50 {
			t0 := time.Now()
			if _, v, err := repo.Load(ctx, id); err != nil || v != 1000 {
				return nil, fmt.Errorf("loading: version %d, %v", v, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		name := "load 1,000 events, no snapshot"
		if snapEvery > 0 {
			name = "load 1,000 events, snapshot at 1,000"
		}
		out = append(out, loadResult{name: name, p50: lat[len(lat)/2]})
	}
	return out, nil
}

func print(results []result, loads []loadResult) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "row\tclients\tops/s\tp50\tp99\tp50 ×bare\tp99 ×bare\tops/s ×bare\t")
	var base result
	for _, r := range results {
		if strings.HasPrefix(r.name, "bare") {
			base = r
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t\n", r.name, r.clients, r.throughput(),
			benchkit.Ms(r.pct(.5)), benchkit.Ms(r.pct(.99)),
			benchkit.Ratio(r.pct(.5), base.pct(.5)), benchkit.Ratio(r.pct(.99), base.pct(.99)), r.throughput()/base.throughput())
	}
	_ = w.Flush()

	fmt.Println()
	find := func(name string, clients int) result {
		for _, r := range results {
			if r.name == name && r.clients == clients {
				return r
			}
		}
		return result{}
	}
	for _, c := range []int{1, 64} {
		b := find("bare LWT INSERT IF NOT EXISTS", c)
		for _, name := range []string{"commit 1 event, new aggregate", "commit 1 event, next version"} {
			r := find(name, c)
			benchkit.Check(fmt.Sprintf("%s, %d clients: p50 / bare p50", name, c), benchkit.Ratio(r.pct(.5), b.pct(.5)), 1.15, true)
			benchkit.Check(fmt.Sprintf("%s, %d clients: p99 / bare p99", name, c), benchkit.Ratio(r.pct(.99), b.pct(.99)), 1.4, true)
		}
	}
	b64 := find("bare LWT INSERT IF NOT EXISTS", 64)
	benchkit.Check("commit 1 event, next version, 64 clients: ops/s / bare", find("commit 1 event, next version", 64).throughput()/b64.throughput(), 0.85, false)
	for _, c := range []int{1, 64} {
		one, ten := find("commit 1 event, next version", c), find("commit 10 events, next version", c)
		benchkit.Check(fmt.Sprintf("commit 10 events / 1 event, %d clients: p50", c), benchkit.Ratio(ten.pct(.5), one.pct(.5)), 1.3, true)
	}

	fmt.Println()
	for _, l := range loads {
		fmt.Printf("%-40s p50 %s\n", l.name, benchkit.Ms(l.p50))
	}
}

// A minimal aggregate for the load measurement: a command adds n events.

type benchState struct{ N int64 }

var benchAggregate = eventstore.Aggregate[benchState, int, int]{
	Type: "bench",
	Decide: func(_ benchState, n int) ([]int, error) {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	},
	Apply: func(s benchState, _ int) benchState { s.N++; return s },
}

type benchCodec struct{}

func (benchCodec) EncodeEvent(int) (string, []byte, error) {
	return "OrderConfirmed", events(1)[0].Data, nil
}
func (benchCodec) DecodeEvent(string, []byte) (int, error) { return 0, nil }
func (benchCodec) EncodeState(s benchState) ([]byte, error) {
	return []byte(fmt.Sprintf("%d", s.N)), nil
}
func (benchCodec) DecodeState(b []byte) (benchState, error) {
	var s benchState
	_, err := fmt.Sscanf(string(b), "%d", &s.N)
	return s, err
}
func (benchCodec) StateVersion() int32 { return 1 }
