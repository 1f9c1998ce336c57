package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
)

// series is every series of the gauge called name, as "label=value,…" →
// value.
func series(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if key != "" {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// A healthy system exports a 0 series of every gauge for every component
// that can dead-letter, and a count that falls to 0 reads 0, never "No
// data" or a stale value.
func TestGaugesReadZeroWhenEmpty(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)

	m.set(deadletter.Stats{})
	zeroes := map[string]float64{}
	for _, c := range components() {
		zeroes["component="+c] = 0
	}
	require.Equal(t, zeroes, series(t, reg, "orderstream_dlq_parked_aggregates"))
	require.Equal(t, zeroes, series(t, reg, "orderstream_dlq_pending_retries"))
	messages := map[string]float64{}
	for _, c := range components() {
		messages["component="+c+",event_type=none"] = 0
	}
	require.Equal(t, messages, series(t, reg, "orderstream_dlq_messages"))
	require.Len(t, components(), 5, "the relay and four projectors")

	// Dead letters, of a component the service did not know of too.
	m.set(deadletter.Stats{
		ByComponentAndType: []deadletter.Count{{Component: "relay", EventType: "OrderCreated", Count: 3}, {Component: "elsewhere", EventType: "", Count: 1}},
		Parked:             map[string]int{"relay": 2, "elsewhere": 1},
		PendingRetries:     map[string]int{"relay": 1},
	})
	require.Equal(t, 3.0, testutil.ToFloat64(m.messages.WithLabelValues("relay", "OrderCreated")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.messages.WithLabelValues("elsewhere", noEventType)))
	require.Equal(t, 2.0, testutil.ToFloat64(m.parked.WithLabelValues("relay")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.pending.WithLabelValues("relay")))

	// All resolved: every series shown before reads 0.
	m.set(deadletter.Stats{})
	for name, s := range map[string]map[string]float64{
		"orderstream_dlq_messages":          series(t, reg, "orderstream_dlq_messages"),
		"orderstream_dlq_parked_aggregates": series(t, reg, "orderstream_dlq_parked_aggregates"),
		"orderstream_dlq_pending_retries":   series(t, reg, "orderstream_dlq_pending_retries"),
	} {
		for k, v := range s {
			require.Zero(t, v, "%s{%s}", name, k)
		}
	}
	require.Contains(t, series(t, reg, "orderstream_dlq_messages"), "component=relay,event_type=OrderCreated")
	require.Contains(t, series(t, reg, "orderstream_dlq_messages"), "component=elsewhere,event_type=none")
	require.Contains(t, series(t, reg, "orderstream_dlq_parked_aggregates"), "component=elsewhere")
}
