package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/httpload"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// statementCounter counts the CQL statements a session sends, by table
// and kind (select, insert, update, lwt, batch-lwt, …): the cheapest
// honest count of what a command costs the database (issue 18).
type statementCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

var (
	tableRe = regexp.MustCompile(`(?i)\b(?:FROM|INTO|UPDATE)\s+([a-z_][a-z0-9_.]*)`)
	lwtRe   = regexp.MustCompile(`(?i)\bIF\s+(NOT\s+EXISTS|[a-z_]+\s*=)`)
)

func classify(stmt string) (table, kind string) {
	table = "?"
	if m := tableRe.FindStringSubmatch(stmt); m != nil {
		table = m[1]
	}
	kind = strings.ToLower(strings.Fields(strings.TrimSpace(stmt))[0])
	if kind == "select" && table == "event_store" && strings.Contains(stmt, "current_sequence") {
		kind = "select-version" // the partition's static columns only
	}
	if lwtRe.MatchString(stmt) {
		kind += "-lwt"
	}
	return table, kind
}

func (c *statementCounter) add(table, kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[table+" "+kind]++
}

func (c *statementCounter) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	c.add(classify(q.Statement))
}

func (c *statementCounter) ObserveBatch(_ context.Context, b gocql.ObservedBatch) {
	if len(b.Statements) == 0 {
		return
	}
	table, kind := classify(b.Statements[0])
	if strings.HasSuffix(kind, "-lwt") {
		kind = "batch-lwt"
	} else {
		kind = "batch"
	}
	c.add(table, kind)
}

func (c *statementCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// observedSession opens a session on the shared stack whose statements c
// counts.
func observedSession(t *testing.T, c *statementCounter) (*gocql.Session, cql.Config) {
	t.Helper()
	cfg := stacktest.RequireCQL(t)
	stacktest.Migrate(t, cfg, cfg.Keyspace)
	cluster := cfg.ClusterConfig(cfg.Keyspace)
	cluster.QueryObserver = c
	cluster.BatchObserver = c
	session, err := cluster.CreateSession()
	require.NoError(t, err)
	t.Cleanup(session.Close)
	return session, cfg
}

// TestStatementsPerCommand runs the load generator's default mix (4
// clients, 600 commands, every 20th invalid) through the whole handler,
// with personal data sealed as `make up` runs it, and counts the CQL
// statements per command by table and kind. It prints the table
// (docs/benchmarks.md, "Reads per command") and holds the reads of
// event_store and snapshots to what the state cache allows.
func TestStatementsPerCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a load against the shared stack")
	}
	for _, tc := range []struct {
		name      string
		cacheSize int
	}{{"no state cache", 0}, {"state cache", 10_000}} {
		t.Run(tc.name, func(t *testing.T) {
			counter := &statementCounter{counts: map[string]int{}}
			session, cqlCfg := observedSession(t, counter)
			cfg := defaultConfig()
			cfg.CQL = cqlCfg
			cfg.Personal.Enabled = true
			cfg.Personal.KEKFile = writeKEK(t)
			cfg.Repository.CacheSize = tc.cacheSize
			require.NoError(t, cfg.Validate())
			handler, err := newHandler(session, cfg, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider(), nil)
			require.NoError(t, err)
			srv := httptest.NewServer(handler)
			t.Cleanup(srv.Close)

			before := counter.snapshot()
			rep, err := httpload.Run(context.Background(), httpload.Config{CommandURL: srv.URL, Clients: 4, Commands: 600, InvalidEvery: 20, Seed: 18})
			require.NoError(t, err)
			require.Zero(t, rep.UnexpectedTotal(), "%v %v", rep.Unexpected, rep.Samples)
			after := counter.snapshot()

			per := map[string]float64{}
			var keys []string
			for k, v := range after {
				if d := v - before[k]; d > 0 {
					per[k] = float64(d) / float64(rep.Commands)
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "%s: %d commands\t\t\n", tc.name, rep.Commands)
			fmt.Fprintln(w, "table kind\tper command\t")
			for _, k := range keys {
				fmt.Fprintf(w, "%s\t%.2f\t\n", k, per[k])
			}
			_ = w.Flush()

			reads := per["event_store select"] + per["event_store select-version"] + per["snapshots select"]
			if tc.cacheSize == 0 {
				return
			}
			// Without the cache each command loads its aggregate (a
			// snapshot and an event read) and each CreateOrder its
			// customer too: 2.46 reads per command. With it, the
			// customer's version read of CreateOrder and the loads for the
			// commands refused on a cached state are left: 0.32.
			require.Less(t, reads, 0.5, "event_store and snapshots reads per command with the state cache")
		})
	}
}

// Two replicas, each with its own state cache, on one database: what one
// commits, the other decides on at once, through the commit's version
// check (a command) or the customer's version read (CanOrder).
func TestReplicasWithStateCaches(t *testing.T) {
	a := newEnv(t)
	b := newEnv(t)
	cust := a.registerCustomer()
	order := a.createOrder(cust) // A caches the customer, active, and the order
	b.ok(b.do("POST", "/v1/customers/"+cust+"/suspend", map[string]any{"reason": "fraud check"}), 200, 2)
	a.problem(a.do("POST", "/v1/orders", map[string]any{"customer_id": cust, "items": []any{item("sku-1", 1, 100)}}), 409, "state-conflict", "")
	b.ok(b.do("POST", "/v1/customers/"+cust+"/reactivate", nil), 200, 3)
	a.createOrder(cust)

	b.ok(b.do("POST", "/v1/orders/"+order+"/confirm", nil), 200, 2)
	// A's cached order is created, where shipping is refused: the refusal
	// is decided again on the stored state, confirmed, which ships.
	a.ok(a.do("POST", "/v1/orders/"+order+"/ship", map[string]any{"carrier": "DHL", "tracking_number": "1Z"}), 200, 3)
}
