// Package tracing builds the OpenTelemetry tracer provider of a process: an
// OTLP/gRPC exporter when an endpoint is configured, a file of JSON spans
// when the file exporter is chosen (tests, a laptop without a collector), a
// no-op provider otherwise. The provider is passed in, never installed globally by library
// code; main may install it and the W3C propagator for instrumentation
// libraries that only read the global.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderstream/orderstream/pkg/config"
)

// Config names the exporter (the OTLP collector, or a file) and the
// sampling ratio.
type Config struct {
	Exporter    string  `mapstructure:"exporter" help:"otlp (to endpoint) or file (JSON spans, one per line, to file; see FileSpan)"`
	Endpoint    string  `mapstructure:"endpoint" help:"OTLP/gRPC collector host:port; empty disables export"`
	Insecure    bool    `mapstructure:"insecure" help:"talk plaintext gRPC to the collector"`
	File        string  `mapstructure:"file" help:"with exporter file: the file spans are appended to; {service} is replaced by the service's name"`
	SampleRatio float64 `mapstructure:"sample_ratio" help:"fraction of root traces sampled, 0..1"`
}

// Exporters.
const (
	ExporterOTLP = "otlp"
	ExporterFile = "file"
)

// DefaultConfig exports nothing and samples every trace when enabled.
func DefaultConfig() Config { return Config{Exporter: ExporterOTLP, SampleRatio: 1, Insecure: true} }

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, config.Errorf("sample_ratio", "must be between 0 and 1, got %v", c.SampleRatio))
	}
	switch c.Exporter {
	case ExporterOTLP:
	case ExporterFile:
		if c.File == "" {
			errs = append(errs, config.Errorf("file", "must name a file when exporter is file"))
		}
	default:
		errs = append(errs, config.Errorf("exporter", "must be otlp or file, got %q", c.Exporter))
	}
	return errors.Join(errs...)
}

// Propagator is the W3C trace-context and baggage propagator used on HTTP
// requests and on event envelopes.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New returns the tracer provider and a shutdown function that flushes it.
func New(ctx context.Context, cfg Config, service, version string) (trace.TracerProvider, func(context.Context) error, error) {
	var export sdktrace.TracerProviderOption
	closeFile := func() error { return nil }
	switch {
	case cfg.Exporter == ExporterFile:
		path := strings.ReplaceAll(cfg.File, "{service}", service)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("opening the span file: %w", err)
		}
		// Each span is written as it ends, so that a reader (a test, an
		// operator's tail -f) sees it at once; a file is for tests and
		// laptops, not for load.
		export, closeFile = sdktrace.WithSyncer(&fileExporter{w: f}), f.Close
	case cfg.Endpoint != "":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithTimeout(5 * time.Second)}
		if cfg.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("creating OTLP exporter for %s: %w", cfg.Endpoint, err)
		}
		export = sdktrace.WithBatcher(exp)
	default:
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	res := resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version))
	tp := sdktrace.NewTracerProvider(
		export,
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return tp, func(ctx context.Context) error { return errors.Join(tp.Shutdown(ctx), closeFile()) }, nil
}
