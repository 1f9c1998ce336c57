package deadletter_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
)

// TestRedriveOutcomesExistFromTheStart: every action and outcome of
// orderstream_dlq_redrives_total is exported at 0 before the first
// request, so that the dashboards' panels have data on a component that
// never carried one out.
func TestRedriveOutcomesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	redrive := func(context.Context, deadletter.Request, deadletter.Entry) (deadletter.Result, error) {
		return deadletter.Result{}, nil
	}
	_, err := deadletter.NewRetrierOn(deadletter.DefaultRetryConfig(), deadletter.NewMemory(), "relay", redrive, zerolog.Nop(), reg)
	require.NoError(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	var series []string
	for _, f := range families {
		if f.GetName() != "orderstream_dlq_redrives_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			series = append(series, labels["action"]+"/"+labels["status"])
		}
	}
	require.ElementsMatch(t, []string{
		"retry/succeeded", "retry/failed", "retry/gone", "retry/error",
		"skip/succeeded", "skip/failed", "skip/gone", "skip/error",
	}, series)
}
