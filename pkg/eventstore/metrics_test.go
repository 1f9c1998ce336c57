package eventstore_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// recorder is a Registerer that keeps the descriptor of every metric
// registered on it (a Registry's Gather lists a vector only once it has a
// series).
type recorder struct{ descs []string }

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs = append(r.descs, d.String())
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

func (r *recorder) has(name string) bool {
	for _, d := range r.descs {
		if strings.Contains(d, `fqName: "`+name+`"`) {
			return true
		}
	}
	return false
}

// A store registers the commit metrics only when asked to: the services
// that only read (query-service, relay, projectors) export no series of
// writes they never make.
func TestCommitMetricsOnlyWhereCommitted(t *testing.T) {
	var reader, writer recorder
	_, err := eventstore.New(nil, eventstore.DefaultConfig(), &reader)
	require.NoError(t, err)
	_, err = eventstore.New(nil, eventstore.DefaultConfig(), &writer, eventstore.WithCommitMetrics())
	require.NoError(t, err)
	for _, name := range []string{
		"orderstream_event_store_write_duration_seconds",
		"orderstream_event_store_events_written_total",
		"orderstream_event_store_conflicts_total",
	} {
		require.False(t, reader.has(name), "%s registered by a store that does not commit: %v", name, reader.descs)
		require.True(t, writer.has(name), "%s registered by a committing store: %v", name, writer.descs)
	}
	require.True(t, reader.has("orderstream_event_store_events_read_total"), "%v", reader.descs)
	require.True(t, writer.has("orderstream_event_store_events_read_total"), "%v", writer.descs)
}
