package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/relay"
)

// dlqMetrics are the service's metrics: gauges read from the tables (the
// same for every replica) and counters of what this replica was asked.
type dlqMetrics struct {
	mu         sync.Mutex           // one set at a time: the stats worker and the stats endpoint both set the gauges
	messages   *prometheus.GaugeVec // component, event_type
	parked     *prometheus.GaugeVec // component
	pending    *prometheus.GaugeVec // component
	oldest     prometheus.Gauge
	requested  *prometheus.CounterVec // component, action
	succeeded  *prometheus.CounterVec // component, action
	failed     *prometheus.CounterVec // component, action
	unresolved *prometheus.CounterVec // component, action, status
	purged     *prometheus.CounterVec // component, how

	// shown holds every label set the gauges ever exported, seeded with
	// the components that can dead-letter: each keeps a series, set to 0
	// when the tables hold nothing for it, so that a healthy system reads
	// 0 (not "No data") and a gauge that falls to 0 reads 0 (not stale).
	shownMessages map[[2]string]bool // component, event_type
	shownParked   map[string]bool
	shownPending  map[string]bool
}

// components are the components that dead-letter and park aggregates:
// the relay and each projector.
func components() []string {
	return []string{
		relay.Component,
		projector.Component(readmodel.OrderReadModel().Name),
		projector.Component(readmodel.OrdersByCustomer().Name),
		projector.Component(readmodel.OrdersByStatus().Name),
		projector.Component(readmodel.CustomerReadModel().Name),
	}
}

// noEventType labels dead letters of input not tied to an event.
const noEventType = "none"

func newMetrics(reg prometheus.Registerer) (*dlqMetrics, error) {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "dlq", Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "dlq", Name: name, Help: help}, labels)
	}
	m := &dlqMetrics{
		messages: gauge("messages", "Dead letters in dead_letter_queue, by component and event type (event_type=\"none\": input not tied to an event; a component with none has a 0 series of it); refreshed every dlq.stats_every.", "component", "event_type"),
		parked:   gauge("parked_aggregates", "Aggregates parked behind a dead letter, by component (0 for a component with none).", "component"),
		pending:  gauge("pending_retries", "Retry and skip requests not carried out yet, by component (0 for a component with none).", "component"),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "dlq", Name: "oldest_message_age_seconds",
			Help: "Age of the dead letter that failed first (0 when the queue is empty)."}),
		requested: counter("retries_requested_total", "Retry (action=retry) and purge-with-skip (action=skip) requests this replica wrote.", "component", "action"),
		succeeded: counter("retries_succeeded_total", "Requests of this replica that re-drove their aggregate through its head and unparked it.", "component", "action"),
		failed:    counter("retries_failed_total", "Requests of this replica whose re-drive failed again; the aggregate stays parked.", "component", "action"),
		unresolved: counter("retries_unresolved_total", "Requests of this replica answered without an outcome: gone (the dead letter was resolved first) or pending (no answer within dlq.retry_timeout).",
			"component", "action", "status"),
		purged:        counter("purged_total", "Dead letters purged through this replica: how=delete (deleted) or how=skip (its component moved past its event).", "component", "how"),
		shownMessages: map[[2]string]bool{}, shownParked: map[string]bool{}, shownPending: map[string]bool{},
	}
	for _, c := range components() {
		m.shownMessages[[2]string{c, noEventType}] = true
		m.shownParked[c], m.shownPending[c] = true, true
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.parked, m.pending, m.oldest, m.requested, m.succeeded, m.failed, m.unresolved, m.purged} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering dlq metrics: %w", err)
			}
		}
	}
	return m, nil
}

// set makes the gauges show st: every label set shown before and absent
// from st reads 0. Each series is set once, so that a scrape never sees a
// count drop to 0 on its way to its new value.
func (m *dlqMetrics) set(st deadletter.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	messages := map[[2]string]float64{}
	for k := range m.shownMessages {
		messages[k] = 0
	}
	for _, c := range st.ByComponentAndType {
		typ := c.EventType
		if typ == "" {
			typ = noEventType
		}
		messages[[2]string{c.Component, typ}] += float64(c.Count)
	}
	for k, n := range messages {
		m.shownMessages[k] = true
		m.messages.WithLabelValues(k[0], k[1]).Set(n)
	}
	setEach(m.parked, m.shownParked, st.Parked)
	setEach(m.pending, m.shownPending, st.PendingRetries)
	m.oldest.Set(0)
	if !st.OldestFailedAt.IsZero() {
		m.oldest.Set(time.Since(st.OldestFailedAt).Seconds())
	}
}

// setEach sets g's series of each component to its count in counts, 0
// for a component shown before and absent now, and remembers the new ones.
func setEach(g *prometheus.GaugeVec, shown map[string]bool, counts map[string]int) {
	for c, n := range counts {
		shown[c] = true
		g.WithLabelValues(c).Set(float64(n))
	}
	for c := range shown {
		if _, ok := counts[c]; !ok {
			g.WithLabelValues(c).Set(0)
		}
	}
}
