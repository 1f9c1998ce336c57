package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
)

// A vector with no child is missing from /metrics but not from the
// descriptors; a metric with a sample has its type.
func TestDescriptorsListUnobservedVectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "orderstream", Name: "command_duration_seconds", Help: `Duration, by "command".`}, []string{"command", "outcome"}),
		prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "orderstream", Name: "lease_leader", Help: "1 while leading.",
			ConstLabels: prometheus.Labels{"lease": `re"lay}, x="y`}}),
	)
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plain_total", Help: "h"}, []string{"a"}))

	descs, err := admin.Descriptors(reg, reg)
	require.NoError(t, err)
	require.Equal(t, []admin.Descriptor{
		{Name: "orderstream_command_duration_seconds", Help: `Duration, by "command".`, Labels: []string{"command", "outcome"}},
		{Name: "orderstream_lease_leader", Type: "gauge", Help: "1 while leading.", ConstLabels: map[string]string{"lease": `re"lay}, x="y`}},
		{Name: "plain_total", Help: "h", Labels: []string{"a"}},
	}, descs)

	srv := admin.New(admin.DefaultConfig("127.0.0.1:0"), zerolog.Nop(), reg)
	ln, err := srv.Listen()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	resp, err := http.Get("http://" + ln.Addr().String() + admin.DescriptorsPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var served []admin.Descriptor
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&served))
	require.Equal(t, descs, served)
}
