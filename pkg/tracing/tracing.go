// Package tracing builds the OpenTelemetry tracer provider of a process: an
// OTLP/gRPC exporter when an endpoint is configured, a no-op provider
// otherwise. The provider is passed in, never installed globally by library
// code; main may install it and the W3C propagator for instrumentation
// libraries that only read the global.
package tracing

import (
	"context"
	"fmt"
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

// Config names the OTLP collector and the sampling ratio.
type Config struct {
	Endpoint    string  `mapstructure:"endpoint" help:"OTLP/gRPC collector host:port; empty disables export"`
	Insecure    bool    `mapstructure:"insecure" help:"talk plaintext gRPC to the collector"`
	SampleRatio float64 `mapstructure:"sample_ratio" help:"fraction of root traces sampled, 0..1"`
}

// DefaultConfig exports nothing and samples every trace when enabled.
func DefaultConfig() Config { return Config{SampleRatio: 1, Insecure: true} }

// Validate checks the sampling ratio.
func (c Config) Validate() error {
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return config.Errorf("sample_ratio", "must be between 0 and 1, got %v", c.SampleRatio)
	}
	return nil
}

// Propagator is the W3C trace-context and baggage propagator used on HTTP
// requests and on event envelopes.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// New returns the tracer provider and a shutdown function that flushes it.
func New(ctx context.Context, cfg Config, service, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithTimeout(5 * time.Second)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("creating OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return tp, tp.Shutdown, nil
}
