package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/k8s/observability/catalog"
)

var dir = filepath.Join("..", "..", "..", "charts", "orderstream", "dashboards")

// The chart ships exactly what the generator makes now.
func TestCommittedDashboardsAreCurrent(t *testing.T) {
	ds, err := All()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var want []string
	for _, d := range ds {
		want = append(want, d.File)
		got, err := os.ReadFile(filepath.Join(dir, d.File))
		require.NoError(t, err)
		require.Equal(t, string(d.JSON), string(got), "%s is stale: go run ./k8s/observability/cmd/dashboards", d.File)
	}
	require.Equal(t, want, names, "the chart's dashboards differ from the generated ones: go run ./k8s/observability/cmd/dashboards")
}

// panel is what the checks read of a dashboard's JSON.
type panel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type board struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readBoards(t *testing.T) map[string]board {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]board{}
	for _, f := range files {
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		var b board
		require.NoError(t, json.Unmarshal(body, &b), f)
		out[filepath.Base(f)] = b
	}
	return out
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// Every query of every dashboard in the chart (generated or not) parses,
// selects only metrics the services register, with labels they have; each
// legend names only labels the query keeps; each variable's label_values
// names a registered metric and one of its labels.
func TestQueriesUseRegisteredMetrics(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)
	for file, b := range readBoards(t) {
		t.Run(file, func(t *testing.T) {
			uids := 0
			for _, p := range flatten(b.Panels) {
				if p.Type == "row" {
					continue
				}
				require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
				require.NotNil(t, p.Datasource, "panel %q", p.Title)
				require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
				for _, tg := range p.Targets {
					res, err := c.Check(tg.Expr)
					require.NoError(t, err, "panel %q", p.Title)
					uids++
					if res.Labels == nil {
						continue
					}
					for _, l := range catalog.LegendLabels(tg.LegendFormat) {
						require.True(t, res.Labels[l], "panel %q: legend %q names %s, which %q does not keep", p.Title, tg.LegendFormat, l, tg.Expr)
					}
				}
			}
			require.Positive(t, uids)
			for _, v := range b.Templating.List {
				if v.Type != "query" {
					continue
				}
				q, _ := v.Query.(string)
				m := labelValues.FindStringSubmatch(q)
				require.NotNil(t, m, "variable %s: want label_values(selector, label), got %q", v.Name, q)
				res, err := c.Check(m[1])
				require.NoError(t, err, "variable %s", v.Name)
				require.True(t, res.Labels[m[2]], "variable %s: %s has no label %s", v.Name, m[1], m[2])
			}
		})
	}
}

// The overview shows what the issue asks of it, and every service that
// registers metrics has its own dashboard.
func TestOverviewAndServiceDashboards(t *testing.T) {
	boards := readBoards(t)
	overview, ok := boards["overview.json"]
	require.True(t, ok)
	var exprs []string
	for _, p := range flatten(overview.Panels) {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		"orderstream_command_duration_seconds_count",  // command rate and errors
		"orderstream_command_duration_seconds_bucket", // command latency
		"orderstream_relay_lag_seconds",               // relay lag
		"orderstream_relay_events_published_total",    // relay throughput
		"orderstream_circuit_breaker_state",           // breaker state
		"orderstream_projector_consumer_lag",          // consumer lag per projector
		"orderstream_dlq_messages",                    // DLQ size
		"orderstream_projector_parked_aggregates",     // parked aggregates
		"orderstream_relay_parked_aggregates",
		"kube_pod_container_status_restarts_total",
	} {
		require.Contains(t, all, want)
	}

	reg, err := catalog.LoadRegistered()
	require.NoError(t, err)
	var uids []string
	for svc := range reg {
		b, ok := boards[svc+".json"]
		require.True(t, ok, "no dashboard for %s", svc)
		require.NotEmpty(t, b.Panels, svc)
		uids = append(uids, b.UID)
	}
	slices.Sort(uids)
	require.Len(t, slices.Compact(uids), len(reg), "dashboard UIDs must differ")
	for _, u := range uids {
		require.LessOrEqual(t, len(u), 40, "Grafana refuses UIDs over 40 characters: %s", u)
	}
}
