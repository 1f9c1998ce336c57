// Package admin serves the operational endpoints of a service on their own
// port, apart from the API, so that metrics and health never reach the
// ingress: /healthz (the process is alive), /readyz (every dependency and
// worker check passes) and /metrics.
//
// Operator endpoints that change something (POST /rebuild, DELETE
// /rebuild) require the bearer token of admin.token or admin.token_file,
// the scheme of the dlq-service's mutations: 401 without an Authorization
// header, 403 with a wrong token, and 403 for every request when no token
// is configured. With admin.pprof the Go runtime's profiles are served
// under /debug/pprof/ (and its variables under /debug/vars) behind the
// same token.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// Check reports whether one dependency or worker is ready; nil means ready.
type Check func(ctx context.Context) error

// Config sets the admin listen address and the time each check may take.
type Config struct {
	Addr         string        `mapstructure:"addr" help:"admin listen address (healthz, readyz, metrics)"`
	CheckTimeout time.Duration `mapstructure:"check_timeout" help:"deadline of each readiness check"`
	Token        string        `mapstructure:"token" help:"bearer token the mutating admin endpoints (POST/DELETE /rebuild) require; with neither token nor token_file they answer 403"`
	TokenFile    string        `mapstructure:"token_file" help:"file holding the admin bearer token, read at start (a mounted Kubernetes secret); instead of token"`
	Pprof        bool          `mapstructure:"pprof" help:"serve the Go runtime's profiles (net/http/pprof: CPU, heap, goroutines, …) under /debug/pprof/ and its variables under /debug/vars, behind the admin bearer token; needs token or token_file"`
}

// MinTokenBytes is the shortest bearer token accepted.
const MinTokenBytes = 16

// DefaultConfig listens on addr with two-second checks, without a token.
func DefaultConfig(addr string) Config { return Config{Addr: addr, CheckTimeout: 2 * time.Second} }

// Validate checks the address, the timeout and the token.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, config.Errorf("addr", "want host:port, got %q", c.Addr))
	}
	if c.CheckTimeout <= 0 {
		errs = append(errs, config.Errorf("check_timeout", "must be positive, got %s", c.CheckTimeout))
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, config.Errorf("token_file", "give either token or token_file, not both"))
	}
	if c.Token != "" && len(c.Token) < MinTokenBytes {
		errs = append(errs, config.Errorf("token", "must be at least %d bytes, got %d", MinTokenBytes, len(c.Token)))
	}
	if c.Pprof && c.Token == "" && c.TokenFile == "" {
		errs = append(errs, config.Errorf("pprof", "needs token or token_file: the profiles are served behind the admin bearer token"))
	}
	if c.TokenFile != "" {
		if _, err := c.token(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// token is the configured bearer token, "" when there is none.
func (c Config) token() (string, error) {
	return config.ReadToken(c.Token, c.TokenFile, "token_file", MinTokenBytes)
}

// Server is the admin HTTP server of one process.
type Server struct {
	cfg    Config
	logger zerolog.Logger
	srv    *http.Server
	router chi.Router

	mu     sync.RWMutex
	checks map[string]Check

	token httpapi.BearerToken // the mutating endpoints need it
}

// New builds the admin server; gatherer is the process's own registry. A
// token file that cannot be read (Validate reports it first) leaves the
// server without a token: its mutating endpoints refuse every request.
func New(cfg Config, logger zerolog.Logger, gatherer prometheus.Gatherer) *Server {
	s := &Server{cfg: cfg, logger: logger, checks: map[string]Check{}}
	switch token, err := cfg.token(); {
	case err != nil:
		logger.Error().Err(err).Msg("admin token unreadable: mutating admin endpoints refuse every request (403)")
	case token != "":
		s.token = httpapi.NewBearerToken(token)
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	// OpenMetrics when the scraper asks for it: the only format that
	// carries exemplars (the trace ids on the latency histograms).
	r.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: zerologAdapter{logger}, EnableOpenMetrics: true}))
	if c, ok := gatherer.(prometheus.Collector); ok { // a *prometheus.Registry is both
		r.Get(DescriptorsPath, descriptorsHandler(c, gatherer))
	}
	if cfg.Pprof {
		r.With(func(next http.Handler) http.Handler { return s.authorize(next.ServeHTTP) }).Mount("/debug", middleware.Profiler())
	}
	s.router = r
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      cfg.CheckTimeout + 10*time.Second,
		IdleTimeout:       time.Minute,
	}
	return s
}

// Handle adds an operator endpoint (such as GET /rebuild) to the admin
// server; call it before Serve. Every method but GET and HEAD changes
// something and requires the bearer token (authorize).
func (s *Server) Handle(method, pattern string, h http.HandlerFunc) {
	if method == http.MethodGet || method == http.MethodHead {
		s.router.Method(method, pattern, h)
		return
	}
	s.router.Method(method, pattern, s.authorize(h))
}

// HasToken reports whether a bearer token is configured (without one, the
// mutating endpoints refuse every request).
func (s *Server) HasToken() bool { return s.token.Configured() }

// authorize lets a request through only with the bearer token: 401 when it
// has none, 403 when it is wrong or no token is configured; nothing of the
// request is read before. The answers are problem documents with the codes
// admin.unauthorized and admin.forbidden.
func (s *Server) authorize(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch err := s.token.Check(r); {
		case errors.Is(err, httpapi.ErrNoBearerToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderstream-admin"`)
			writeProblem(w, http.StatusUnauthorized, "admin.unauthorized", "this endpoint needs an Authorization: Bearer <token> header (admin.token)")
			return
		case err != nil:
			detail := "the bearer token is not the one this server accepts"
			if !s.token.Configured() {
				detail = "this server has no admin token configured (admin.token or admin.token_file), so it refuses every mutating request"
			}
			s.logger.Warn().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("admin request refused")
			writeProblem(w, http.StatusForbidden, "admin.forbidden", detail)
			return
		}
		next(w, r)
	}
}

// writeProblem answers an RFC 9457 problem document.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail, "code": code})
}

// AddCheck registers a named readiness check.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Ready runs every check concurrently and returns the failures by name.
func (s *Server) Ready(ctx context.Context) map[string]error {
	s.mu.RLock()
	checks := make(map[string]Check, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.RUnlock()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		failures = map[string]error{}
	)
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				mu.Lock()
				failures[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failures := s.Ready(r.Context())
	s.mu.RLock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	s.mu.RUnlock()
	sort.Strings(names)

	body := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{Status: "ready", Checks: map[string]string{}}
	for _, n := range names {
		body.Checks[n] = "ok"
		if err := failures[n]; err != nil {
			body.Checks[n] = err.Error()
		}
	}
	code := http.StatusOK
	if len(failures) > 0 {
		body.Status = "not ready"
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// Listen binds the address, so that a port in use fails at start.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin server listening on %s: %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx is done, then shuts down within the
// remaining grace period given by shutdownTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	s.logger.Info().Str("addr", ln.Addr().String()).Msg("admin server listening")
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

type zerologAdapter struct{ l zerolog.Logger }

func (a zerologAdapter) Println(v ...any) { a.l.Error().Msg(fmt.Sprint(v...)) }
