package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/orderstream/orderstream/pkg/metrics"
)

// durationBuckets reach from 0.5 ms to 10 s and are densest between 1 and
// 50 ms, where a command's conditional batch and a read-model query land;
// the tail separates slow from timed out.
var durationBuckets = []float64{
	0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02,
	0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics counts and times HTTP requests by chi route pattern.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers orderstream_http_requests_total{route,method,code}
// and orderstream_http_request_duration_seconds{route,method} on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "orderstream",
			Subsystem: "http",
			Name:      "requests_total",
			Help:      "HTTP requests answered, by chi route pattern (\"unmatched\" when no route matched), method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "orderstream",
			Subsystem: "http",
			Name:      "request_duration_seconds",
			Help:      "Time from the request reaching the router to the handler returning, by chi route pattern and method.",
			Buckets:   durationBuckets,
		}, []string{"route", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// Middleware records every request once the handler returns (or panics).
// Install it with the router's Use, so that the route pattern is known by
// then. Unknown methods are counted as "_OTHER".
func (m *Metrics) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := wrapWriter(w)
			completed := false
			// Deferred without recovering: a panicking request is counted as
			// the 500 Recoverer will answer, and the panic keeps its stack.
			defer func() {
				route, method := routeLabel(r), methodLabel(r.Method)
				m.requests.WithLabelValues(route, method, strconv.Itoa(rec.statusFor(completed))).Inc()
				// The Tracing middleware runs first: the request's span is in
				// its context, and becomes the observation's exemplar.
				metrics.Observe(r.Context(), m.duration.WithLabelValues(route, method), time.Since(start).Seconds())
			}()
			next.ServeHTTP(rec, r)
			completed = true
		})
	}
}
