package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/tracing"
)

// One command followed everywhere. Every service exports its spans to a
// file of its own (tracing.exporter=file) and logs at debug level; a
// command sent with a traceparent and a correlation id is then found
//   - in the spans: the command-service's HTTP span (child of the caller's),
//     its commit, the relay's publish (a child of the span the
//     command-service stored with the event), one apply per projector the
//     event reaches (each a child of the publish), and the query-service's
//     read that waited for it with min_version: all in the caller's trace;
//   - in the logs: a grep of the correlation id across the services' logs
//     finds the command's request, the publish and every apply.
func TestFollowOneCommandEverywhere(t *testing.T) {
	spanDir := t.TempDir()
	s := Start(t, Options{LogLevel: "debug", Env: []string{
		"ORDERSTREAM_TRACING_EXPORTER=file",
		"ORDERSTREAM_TRACING_FILE=" + filepath.Join(spanDir, "{service}.jsonl"),
	}})
	c := NewClient(t)
	cmd, qry := s.URL("command-service"), s.URL("query-service")
	var customer string // the order needs a customer: the first case's

	for _, tc := range []struct {
		name       string
		command    func(t *testing.T, header ...string) string // sends the command, returns the aggregate id
		read       string                                      // the query path of the aggregate, %s its id
		topic      string
		projectors []string
	}{
		{
			name: "customer",
			command: func(t *testing.T, header ...string) string {
				a := c.Do("POST", cmd+"/v1/customers", map[string]any{"name": "Grace Hopper", "email": "grace@example.org"}, header...)
				require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.Status, "%s", a.Body)
				customer = a.JSON(t)["id"].(string)
				return customer
			},
			read: "/v1/customers/%s", topic: record.TopicOf(s.Prefix, "customer"),
			projectors: []string{"projector-customer-read-model"},
		},
		{
			name: "order",
			command: func(t *testing.T, header ...string) string {
				require.NotEmpty(t, customer, "the customer case runs first")
				a := c.Do("POST", cmd+"/v1/orders", map[string]any{"customer_id": customer,
					"items": []map[string]any{{"product_id": "cobol-manual", "quantity": 1, "unit_price": map[string]any{"amount_minor": 1200, "currency": "USD"}}}}, header...)
				require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.Status, "%s", a.Body)
				return a.JSON(t)["id"].(string)
			},
			read: "/v1/orders/%s", topic: record.TopicOf(s.Prefix, "order"),
			projectors: []string{"projector-order-read-model", "projector-orders-by-customer", "projector-orders-by-status"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traceID, callerSpan, readerSpan := hexID(32), hexID(16), hexID(16)
			correlation := "follow-" + tc.name + "-" + uuid.NewString()
			id := tc.command(t, "traceparent", traceparent(traceID, callerSpan), "X-Correlation-ID", correlation)

			// The read that observes the command: it waits for the read
			// model to reach version 1, in the same trace.
			read := c.Do("GET", qry+fmt.Sprintf(tc.read, id)+"?min_version=1", nil, "traceparent", traceparent(traceID, readerSpan))
			require.Equal(t, http.StatusOK, read.Status, "%s", read.Body)

			// The spans, as each service's exporter writes them.
			tree := readSpans(t, spanDir, traceID)
			for deadline := time.Now().Add(30 * time.Second); !tree.complete(tc.topic, tc.projectors); tree = readSpans(t, spanDir, traceID) {
				if time.Now().After(deadline) {
					t.Fatalf("the trace never had every hop; it has:\n%s", tree)
				}
				time.Sleep(200 * time.Millisecond)
			}

			// command-service: the HTTP span continues the caller's trace,
			// and the commit happens under it.
			server := tree.one(t, "command-service", func(sp tracing.FileSpan) bool { return sp.Kind == "server" && sp.ParentSpanID == callerSpan })
			commit := tree.one(t, "command-service", func(sp tracing.FileSpan) bool { return sp.Name == "eventstore.Append" })
			require.True(t, tree.descends(commit, server.SpanID), "the commit is under the HTTP span")

			// cdc-relay: the publish is a child of the span stored with the
			// event (a span of the command-service's), with the record's place.
			publish := tree.one(t, "cdc-relay", func(sp tracing.FileSpan) bool { return sp.Kind == "producer" && sp.Name == "send "+tc.topic })
			require.Contains(t, tree.idsOf("command-service"), publish.ParentSpanID, "the publish continues the command's trace")
			require.True(t, tree.descends(publish, server.SpanID), "the publish is under the command's HTTP span")
			require.Equal(t, id, publish.Attributes[string(record.AttrAggregateID)])
			require.EqualValues(t, 1, publish.Attributes[string(record.AttrSequence)])
			require.Equal(t, tc.topic, publish.Attributes["messaging.destination.name"])
			require.Contains(t, publish.Attributes, "messaging.destination.partition.id")
			require.Contains(t, publish.Attributes, "messaging.kafka.offset")

			// Every projector the event reaches applies it in a child of the
			// publish.
			for _, p := range tc.projectors {
				apply := tree.one(t, p, func(sp tracing.FileSpan) bool { return sp.Kind == "consumer" && sp.ParentSpanID == publish.SpanID })
				require.Equal(t, "process "+tc.topic, apply.Name)
				require.Equal(t, id, apply.Attributes[string(record.AttrAggregateID)])
				require.EqualValues(t, 1, apply.Attributes[string(record.AttrSequence)])
				require.Equal(t, publish.Attributes["messaging.kafka.offset"], apply.Attributes["messaging.kafka.offset"])
			}

			// query-service: the read is in the same trace.
			tree.one(t, "query-service", func(sp tracing.FileSpan) bool { return sp.Kind == "server" && sp.ParentSpanID == readerSpan })
			t.Logf("trace %s:\n%s", traceID, tree)

			// One grep of the correlation id across the services' logs: the
			// command's request, the publish and every apply, each naming
			// the event and the trace.
			var found []string
			for _, name := range append([]string{"command-service", "cdc-relay"}, tc.projectors...) {
				for _, line := range strings.Split(s.Log(name, 1<<30), "\n") {
					if !strings.Contains(line, correlation) {
						continue
					}
					var l map[string]any
					require.NoError(t, json.Unmarshal([]byte(line), &l), "%s: %s", name, line)
					require.Equal(t, correlation, l["correlation_id"], "%s: %s", name, line)
					require.Equal(t, traceID, l["trace_id"], "%s: %s", name, line)
					if name != "command-service" {
						require.Equal(t, id, l["aggregate_id"], "%s: %s", name, line)
						require.EqualValues(t, 1, l["sequence"], "%s: %s", name, line)
						require.NotEmpty(t, l["event_id"], "%s: %s", name, line)
						require.Contains(t, l, "causation_id", "%s: %s", name, line)
					}
					found = append(found, name+": "+l["message"].(string))
				}
			}
			want := []string{"cdc-relay: event published"}
			for _, p := range tc.projectors {
				want = append(want, p+": event applied")
			}
			for _, w := range want {
				require.Contains(t, found, w, "grep %s found:\n%s", correlation, strings.Join(found, "\n"))
			}
			require.True(t, strings.HasPrefix(strings.Join(found, "\n"), "command-service: "), "the command's own request first; found:\n%s", strings.Join(found, "\n"))
		})
	}
}

// traceparent is a W3C traceparent of a sampled span.
func traceparent(traceID, spanID string) string { return "00-" + traceID + "-" + spanID + "-01" }

// hexID is a random trace (32) or span (16) id in hex.
func hexID(n int) string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:n] }

// spanTree is one trace's spans from every service's span file.
type spanTree struct {
	spans []tracing.FileSpan
	byID  map[string]tracing.FileSpan
}

func readSpans(t *testing.T, dir, traceID string) *spanTree {
	t.Helper()
	tree := &spanTree{byID: map[string]tracing.FileSpan{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			if !strings.Contains(sc.Text(), traceID) {
				continue
			}
			var sp tracing.FileSpan
			if json.Unmarshal(sc.Bytes(), &sp) != nil || sp.TraceID != traceID {
				continue // a line being written
			}
			tree.spans = append(tree.spans, sp)
			tree.byID[sp.SpanID] = sp
		}
		_ = fh.Close()
	}
	return tree
}

// complete says whether every hop has been exported.
func (tr *spanTree) complete(topic string, projectors []string) bool {
	has := func(service, kind, name string) bool {
		for _, sp := range tr.spans {
			if sp.Service == service && sp.Kind == kind && (name == "" || sp.Name == name) {
				return true
			}
		}
		return false
	}
	ok := has("command-service", "server", "") && has("cdc-relay", "producer", "send "+topic) && has("query-service", "server", "")
	for _, p := range projectors {
		ok = ok && has(p, "consumer", "process "+topic)
	}
	return ok
}

// one is the single span of service that matches.
func (tr *spanTree) one(t *testing.T, service string, match func(tracing.FileSpan) bool) tracing.FileSpan {
	t.Helper()
	var got []tracing.FileSpan
	for _, sp := range tr.spans {
		if sp.Service == service && match(sp) {
			got = append(got, sp)
		}
	}
	require.Len(t, got, 1, "spans of %s that match, in:\n%s", service, tr)
	return got[0]
}

func (tr *spanTree) idsOf(service string) []string {
	var ids []string
	for _, sp := range tr.spans {
		if sp.Service == service {
			ids = append(ids, sp.SpanID)
		}
	}
	return ids
}

// descends says whether ancestor is sp's parent, or its parent's, and so
// on.
func (tr *spanTree) descends(sp tracing.FileSpan, ancestor string) bool {
	for range len(tr.spans) {
		if sp.ParentSpanID == ancestor {
			return true
		}
		parent, ok := tr.byID[sp.ParentSpanID]
		if !ok {
			return false
		}
		sp = parent
	}
	return false
}

// String draws the tree, each span under its parent.
func (tr *spanTree) String() string {
	if tr == nil {
		return "(no spans)"
	}
	var b strings.Builder
	var draw func(parent string, depth int)
	seen := map[string]bool{}
	draw = func(parent string, depth int) {
		for _, sp := range tr.spans {
			if sp.ParentSpanID != parent || seen[sp.SpanID] {
				continue
			}
			seen[sp.SpanID] = true
			fmt.Fprintf(&b, "%s%s [%s %s] %s\n", strings.Repeat("  ", depth), sp.Name, sp.Service, sp.Kind, sp.SpanID)
			draw(sp.SpanID, depth+1)
		}
	}
	roots := map[string]bool{}
	for _, sp := range tr.spans {
		if _, ok := tr.byID[sp.ParentSpanID]; !ok {
			roots[sp.ParentSpanID] = true
		}
	}
	for r := range roots {
		fmt.Fprintf(&b, "(caller %s)\n", r)
		draw(r, 1)
	}
	return b.String()
}
