package catalog

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
)

func testCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := New(Registered{
		"command-service": {
			{Name: "orderstream_command_duration_seconds", Labels: []string{"command", "outcome"}},
			{Name: "orderstream_build_info", Type: "gauge", ConstLabels: map[string]string{"service": "command-service", "version": "dev"}},
		},
		"cdc-relay": {
			{Name: "orderstream_relay_events_published_total", Type: "counter"},
			{Name: "orderstream_relay_publish_duration_seconds", Type: "histogram"},
			{Name: "orderstream_relay_unpublished_events", Type: "gauge"},
			{Name: "orderstream_build_info", Type: "gauge", ConstLabels: map[string]string{"service": "cdc-relay", "version": "dev"}},
		},
		"projector-order-read-model": {
			{Name: "orderstream_projector_consumer_lag", Labels: []string{"partition"}, ConstLabels: map[string]string{"projection": "order-read-model"}},
		},
	})
	require.NoError(t, err)
	return c
}

func TestCheck(t *testing.T) {
	c := testCatalog(t)
	for _, tc := range []struct {
		expr    string
		metrics []string
		labels  []string // nil: unknown, unless empty
		empty   bool
		err     string
	}{
		{expr: `sum by (command) (rate(orderstream_command_duration_seconds_count{namespace="$namespace", outcome!="ok"}[$__rate_interval]))`,
			metrics: []string{"orderstream_command_duration_seconds_count"}, labels: []string{"command"}},
		{expr: `histogram_quantile(0.99, sum by (le, command) (rate(orderstream_command_duration_seconds_bucket[5m])))`,
			metrics: []string{"orderstream_command_duration_seconds_bucket"}, labels: []string{"command"}},
		{expr: `histogram_quantile(0.99, sum by (le) (rate(orderstream_relay_publish_duration_seconds_bucket[5m])))`,
			metrics: []string{"orderstream_relay_publish_duration_seconds_bucket"}, labels: nil, empty: true},
		{expr: `max by (projection) (orderstream_projector_consumer_lag)`,
			metrics: []string{"orderstream_projector_consumer_lag"}, labels: []string{"projection"}},
		{expr: `sum(orderstream_relay_unpublished_events) / sum(rate(orderstream_relay_events_published_total[5m]))`,
			metrics: []string{"orderstream_relay_events_published_total", "orderstream_relay_unpublished_events"}, labels: nil, empty: true},
		{expr: `increase(kube_pod_container_status_restarts_total{namespace="x"}[1h]) > 0`,
			metrics: []string{"kube_pod_container_status_restarts_total"}, labels: []string{"container", "endpoint", "instance", "job", "namespace", "pod", "service", "uid"}},
		{expr: `rate(orderstream_relay_events_published_total[5m]) * on (namespace, pod) group_left (version) orderstream_build_info`,
			metrics: []string{"orderstream_build_info", "orderstream_relay_events_published_total"},
			labels:  []string{"container", "endpoint", "instance", "job", "namespace", "pod", "service", "version"}},

		{expr: `rate(orderstream_relay_events_published[5m])`, err: "not a metric any service registers"},
		{expr: `orderstream_relay_unpublished_events_count`, err: "not a metric"},
		{expr: `orderstream_relay_events_published_total_bucket`, err: "not a metric"},
		{expr: `orderstream_projector_consumer_lag{projektion="x"}`, err: `no label "projektion"`},
		{expr: `sum by (projektion) (orderstream_projector_consumer_lag)`, err: `sum by "projektion"`},
		{expr: `histogram_quantile(0.9, sum by (command) (rate(orderstream_command_duration_seconds_bucket[5m])))`, err: "without le"},
		{expr: `{__name__=~"orderstream_.*"}`, err: "exact name"},
		{expr: `sum(rate(orderstream_relay_events_published_total[5m])`, err: "parsing"},
		{expr: `vector(1)`, err: "selects no metric"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			res, err := c.Check(tc.expr)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.metrics, res.Metrics)
			if tc.empty {
				require.NotNil(t, res.Labels)
				require.Empty(t, res.Labels)
			} else if tc.labels == nil {
				require.Nil(t, res.Labels)
			} else {
				require.Equal(t, tc.labels, slices.Sorted(maps.Keys(res.Labels)))
			}
		})
	}
}

func TestCatalogRejectsConflicts(t *testing.T) {
	_, err := New(Registered{
		"a": {{Name: "x", Type: "gauge"}},
		"b": {{Name: "x", Type: "counter"}},
	})
	require.ErrorContains(t, err, "x is a")

	_, err = New(Registered{"a": {admin.Descriptor{Name: "up"}}})
	require.ErrorContains(t, err, "external")
}

func TestLegendLabels(t *testing.T) {
	require.Equal(t, []string{"command", "outcome"}, LegendLabels("{{command}} {{ outcome }} ({{command}})"))
	require.Empty(t, LegendLabels("p99"))
}

// The committed file loads and holds every service that runs service.Main.
func TestRegisteredLoads(t *testing.T) {
	reg, err := LoadRegistered()
	require.NoError(t, err)
	require.Contains(t, reg, "cdc-relay")
	_, err = New(reg)
	require.NoError(t, err)
}
