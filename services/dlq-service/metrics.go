package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/metrics"
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
		messages: gauge("messages", "Dead letters in dead_letter_queue, by component and event type (event_type=\"none\": input not tied to an event); refreshed every dlq.stats_every.", "component", "event_type"),
		parked:   gauge("parked_aggregates", "Aggregates parked behind a dead letter, by component.", "component"),
		pending:  gauge("pending_retries", "Retry and skip requests not carried out yet, by component.", "component"),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "dlq", Name: "oldest_message_age_seconds",
			Help: "Age of the dead letter that failed first (0 when the queue is empty)."}),
		requested: counter("retries_requested_total", "Retry (action=retry) and purge-with-skip (action=skip) requests this replica wrote.", "component", "action"),
		succeeded: counter("retries_succeeded_total", "Requests of this replica that re-drove their aggregate through its head and unparked it.", "component", "action"),
		failed:    counter("retries_failed_total", "Requests of this replica whose re-drive failed again; the aggregate stays parked.", "component", "action"),
		unresolved: counter("retries_unresolved_total", "Requests of this replica answered without an outcome: gone (the dead letter was resolved first) or pending (no answer within dlq.retry_timeout).",
			"component", "action", "status"),
		purged: counter("purged_total", "Dead letters purged through this replica: how=delete (deleted) or how=skip (its component moved past its event).", "component", "how"),
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

// set makes the gauges show st.
func (m *dlqMetrics) set(st deadletter.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.messages.Reset()
	for _, c := range st.ByComponentAndType {
		typ := c.EventType
		if typ == "" {
			typ = noEventType
		}
		m.messages.WithLabelValues(c.Component, typ).Set(float64(c.Count))
	}
	m.parked.Reset()
	for c, n := range st.Parked {
		m.parked.WithLabelValues(c).Set(float64(n))
	}
	m.pending.Reset()
	for c, n := range st.PendingRetries {
		m.pending.WithLabelValues(c).Set(float64(n))
	}
	m.oldest.Set(0)
	if !st.OldestFailedAt.IsZero() {
		m.oldest.Set(time.Since(st.OldestFailedAt).Seconds())
	}
}

// refreshGauges is the "stats" worker: it writes the query-table rows of
// dead letters older than schema v0004 once, then refreshes the gauges
// every StatsEvery until ctx ends. A failed read is logged and tried again
// at the next tick: the gauges only go stale.
func (a *api) refreshGauges(ctx context.Context) error {
	n, err := deadletter.Backfill(ctx, a.session)
	if err != nil {
		return err
	}
	if n > 0 {
		a.logger.Info().Int("dead_letters", n).Msg("wrote the query-table rows of dead letters written before them")
	}
	t := time.NewTicker(a.cfg.StatsEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, max(a.cfg.StatsEvery, 10*time.Second))
		st, err := deadletter.ReadStats(rctx, a.session)
		cancel()
		if err == nil {
			a.m.set(st)
		} else if ctx.Err() == nil {
			a.logger.Warn().Err(err).Msg("reading dlq stats for the gauges")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
