// Package metrics builds the Prometheus registry of one process. Nothing is
// registered on the global registry: the registry is passed to constructors
// as a prometheus.Registerer and served by the admin server.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every orderstream metric.
const Namespace = "orderstream"

// NewRegistry returns a registry with the Go runtime and process collectors
// and a build-info gauge labelled with the service name and version.
func NewRegistry(service, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   Namespace,
		Name:        "build_info",
		Help:        "Build information of the running service; always 1.",
		ConstLabels: prometheus.Labels{"service": service, "version": version},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}
