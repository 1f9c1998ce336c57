package dashboards

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// failurePanels are the panels of failure counters: they show 0 while
// nothing failed, and no data when a metric name is wrong.
var failurePanels = map[string]bool{
	"Server errors":    true,
	"5xx by route":     true,
	"HTTP 5xx":         true,
	"Publish failures": true,
	"Pod restarts":     true,
}

// counter is a series that grows by step every 15 s for 10 minutes.
type counter struct {
	series string
	step   float64
}

// totals are series that exist from a service's start; none of them
// counts a failure.
var totals = []counter{
	{`orderstream_http_requests_total{namespace="ns", job="query-service", pod="q-1", route="/v1/orders", code="200"}`, 10},
	{`orderstream_command_duration_seconds_count{namespace="ns", job="command-service", pod="c-1", command="CreateOrder", outcome="ok"}`, 10},
	{`orderstream_relay_events_published_total{namespace="ns", job="cdc-relay", pod="r-1"}`, 10},
	{`kube_pod_container_status_restarts_total{namespace="ns", pod="q-1", container="query-service"}`, 0},
}

// failures are one series of each failure counter.
var failures = []counter{
	{`orderstream_http_requests_total{namespace="ns", job="query-service", pod="q-1", route="/v1/orders", code="503"}`, 1},
	{`orderstream_command_duration_seconds_count{namespace="ns", job="command-service", pod="c-1", command="CreateOrder", outcome="unavailable"}`, 1},
	{`orderstream_relay_publish_failures_total{namespace="ns", job="cdc-relay", pod="r-1", reason="timeout"}`, 1},
	{`orderstream_relay_retries_total{namespace="ns", job="cdc-relay", pod="r-1"}`, 1},
	{`kube_pod_container_status_restarts_total{namespace="ns", pod="c-1", container="command-service"}`, 1},
}

// fsample is one float sample.
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

// memory is a Queryable of the counters, for the query engine.
func memory(t *testing.T, cs ...[]counter) storage.Queryable {
	t.Helper()
	var all []storage.Series
	for _, c := range cs {
		for _, x := range c {
			lset, err := parser.NewParser(parser.Options{}).ParseMetric(x.series)
			require.NoError(t, err, x.series)
			var samples []chunks.Sample
			for i := range 41 {
				samples = append(samples, fsample{t: int64(i) * 15_000, f: float64(i) * x.step})
			}
			all = append(all, storage.NewListSeries(lset, samples))
		}
	}
	return storage.QueryableFunc(func(int64, int64) (storage.Querier, error) {
		return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range all {
				match := true
				for _, m := range ms {
					match = match && m.Matches(s.Labels().Get(m.Name))
				}
				if match {
					out = append(out, s)
				}
			}
			return &seriesSet{series: out, i: -1}
		}}, nil
	})
}

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

var panelVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// TestFailurePanelsShowZero evaluates the failure panels' queries: 0 while
// only the totals exist, more than 0 once failures do, no data when a
// metric name is misspelt.
func TestFailurePanelsShowZero(t *testing.T) {
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	quiet := memory(t, totals)
	failing := memory(t, totals, failures)
	vars := map[string]string{"namespace": "ns", "__rate_interval": "1m", "job": ".+", "pod": ".+"}
	at := time.Unix(600, 0)
	eval := func(st storage.Queryable, expr string) promql.Vector {
		t.Helper()
		q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, at)
		require.NoError(t, err, expr)
		defer q.Close()
		r := q.Exec(context.Background())
		require.NoError(t, r.Err, expr)
		v, err := r.Vector()
		require.NoError(t, err, expr)
		return v
	}
	seen := 0
	for file, b := range readBoards(t) {
		for _, p := range flatten(b.Panels) {
			if !failurePanels[p.Title] {
				continue
			}
			for _, tg := range p.Targets {
				seen++
				expr := panelVar.ReplaceAllStringFunc(tg.Expr, func(m string) string {
					return vars[panelVar.FindStringSubmatch(m)[1]]
				})
				what := file + " " + p.Title + ": " + expr
				v := eval(quiet, expr)
				require.NotEmpty(t, v, "no data while nothing failed: %s", what)
				for _, s := range v {
					require.Zero(t, s.F, "%s", what)
				}
				v = eval(failing, expr)
				require.NotEmpty(t, v, "%s", what)
				positive := false
				for _, s := range v {
					positive = positive || s.F > 0
				}
				require.True(t, positive, "the failures do not show: %s", what)
				// A wrong name in either half shows no data.
				for _, name := range []string{"orderstream_http_requests_total", "orderstream_command_duration_seconds_count", "orderstream_relay_events_published_total", "kube_pod_container_status_restarts_total"} {
					if strings.Contains(expr, name) {
						require.Empty(t, eval(quiet, strings.ReplaceAll(expr, name, name+"_typo")), "a misspelt %s still shows data: %s", name, what)
					}
				}
			}
		}
	}
	require.GreaterOrEqual(t, seen, 10)
}
