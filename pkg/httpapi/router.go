package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

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

// AllowOnly makes pattern answer 405, with Allow listing methods, to every
// method of the 405 probe that methods does not name. A fixed path needs it
// beside a parameter route that serves more methods ("/v1/dlq/stats" beside
// "/v1/dlq/{id}"): chi would otherwise hand DELETE /v1/dlq/stats to the
// parameter route and take "stats" for an id.
func AllowOnly(r chi.Router, pattern string, methods ...string) {
	h := NotAllowedHandler{Allow: strings.Join(methods, ", ")}
	for _, m := range allowProbe {
		if !slices.Contains(methods, m) {
			r.Method(m, pattern, h)
		}
	}
}

// NotAllowedHandler answers 405 with a fixed Allow header; AllowOnly
// installs it. Route listings (the OpenAPI check) skip it: it serves no
// operation.
type NotAllowedHandler struct{ Allow string }

func (h NotAllowedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	markUnmatched(r)
	w.Header().Set("Allow", h.Allow)
	WriteProblem(w, r, methodNotAllowed(r))
}
