package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/supervise"
)

// NewRouter returns the router every API starts from: the middleware in
// the order the package documents, problem answers for unknown routes and
// methods, and GET /openapi.json serving spec. Metrics for the middleware
// are registered with reg.
func NewRouter(spec []byte, logger zerolog.Logger, reg prometheus.Registerer, tp trace.TracerProvider, prop propagation.TextMapPropagator) (*chi.Mux, error) {
	httpMetrics, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(CorrelationID(), Recoverer(logger), Tracing(tp, prop), httpMetrics.Middleware(), AccessLog(logger))
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	r.Get("/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(spec)
	})
	return r, nil
}

// Workers listens on cfg.Addr and returns the one worker, "http", that
// serves handler there until its context ends, then drains.
func Workers(cfg ServerConfig, handler http.Handler, logger zerolog.Logger) ([]supervise.Worker, error) {
	srv := NewServer(cfg, handler, logger)
	ln, err := srv.Listen()
	if err != nil {
		return nil, err
	}
	return []supervise.Worker{{Name: "http", Run: func(ctx context.Context) error { return srv.Serve(ctx, ln) }}}, nil
}
