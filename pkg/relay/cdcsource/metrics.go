package cdcsource

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/metrics"
)

// Reasons a log row is ignored, the values of the reason label.
const (
	reasonPreImage           = "preimage"
	reasonPostImage          = "postimage"
	reasonDelete             = "delete"
	reasonStaticRow          = "static_row"
	reasonUpdateWithoutEvent = "update_without_event"
	reasonDuplicate          = "duplicate"
)

var ignoreReasons = []string{
	reasonPreImage, reasonPostImage, reasonDelete, reasonStaticRow, reasonUpdateWithoutEvent, reasonDuplicate,
}

type sourceMetrics struct {
	processed          prometheus.Counter
	ignored            *prometheus.CounterVec
	deadLettered       prometheus.Counter
	deadLetterFailures prometheus.Counter
	progressFailures   prometheus.Counter
}

func newMetrics() *sourceMetrics {
	m := &sourceMetrics{
		processed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "cdc", Name: "events_processed_total",
			Help: "Event rows read from the CDC log and accepted by the sink."}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "cdc", Name: "rows_ignored_total",
			Help: "CDC log rows that are not event rows (static-only writes, deletes, images), by reason."}, []string{"reason"}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "cdc", Name: "rows_dead_lettered_total",
			Help: "CDC log rows that could not be read and were handed to the dead letter queue."}),
		deadLetterFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "cdc", Name: "dead_letter_failures_total",
			Help: "Unreadable CDC log rows the dead letter queue failed to record (they are only logged)."}),
		progressFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "cdc", Name: "progress_save_failures_total",
			Help: "Failed saves of a CDC stream's position to relay_progress (retried at the next save)."}),
	}
	// Touch every reason so that dashboards see zeros rather than absent
	// series until the first row of that kind.
	for _, r := range ignoreReasons {
		m.ignored.WithLabelValues(r)
	}
	return m
}

// register registers every collector or none, so that a failed New leaves
// reg as it found it.
func (m *sourceMetrics) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{m.processed, m.ignored, m.deadLettered, m.deadLetterFailures, m.progressFailures}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}
