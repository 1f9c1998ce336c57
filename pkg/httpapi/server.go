package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
)

// ServerConfig sets the listen address, the timeouts and the body limit of an
// API server.
type ServerConfig struct {
	Addr              string        `mapstructure:"addr" help:"API listen address"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" help:"time a client has to send the request headers"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout" help:"time a client has to send the whole request, body included"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout" help:"time from the end of the request headers to the end of the response"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout" help:"how long an idle keep-alive connection stays open"`
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes" help:"largest request body accepted, in bytes"`
	DrainTimeout      time.Duration `mapstructure:"drain_timeout" help:"how long in-flight requests get to finish on shutdown"`
}

// DefaultServerConfig listens on addr with timeouts that let slow clients
// neither hold connections nor goroutines for long, a 1 MiB body limit and a
// 15 s drain, which fits Kubernetes' default 30 s termination grace period.
func DefaultServerConfig(addr string) ServerConfig {
	return ServerConfig{
		Addr:              addr,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxBodyBytes:      DefaultMaxBodyBytes,
		DrainTimeout:      15 * time.Second,
	}
}

// Validate checks the address, that every timeout and the body limit are
// positive, and that the header timeout fits in the read timeout.
func (c ServerConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, config.Errorf("addr", "want host:port, got %q", c.Addr))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout},
		{"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout},
		{"idle_timeout", c.IdleTimeout},
		{"drain_timeout", c.DrainTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, config.Errorf(d.key, "must be positive, got %s", d.v))
		}
	}
	if c.ReadHeaderTimeout > 0 && c.ReadTimeout > 0 && c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, config.Errorf("read_header_timeout", "must not exceed read_timeout (%s), got %s", c.ReadTimeout, c.ReadHeaderTimeout))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, config.Errorf("max_body_bytes", "must be positive, got %d", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// Server is an API HTTP server that drains on shutdown: it stops accepting
// connections, answers new requests on open connections with 503 so clients
// retry elsewhere, and gives in-flight requests DrainTimeout to finish.
type Server struct {
	cfg    ServerConfig
	logger zerolog.Logger
	srv    *http.Server

	draining atomic.Bool
	inFlight atomic.Int64
}

// NewServer builds the server around handler. Every request body is capped
// at cfg.MaxBodyBytes here already, so a handler that does not use
// DecodeJSON is bounded too.
func NewServer(cfg ServerConfig, handler http.Handler, logger zerolog.Logger) *Server {
	s := &Server{cfg: cfg, logger: logger}
	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.guard(handler),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          log.New(errorLogWriter{logger}, "", 0),
	}
	return s
}

// guard refuses requests once draining and counts the ones it lets in.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			// This runs outside the router, so the correlation id
			// middleware has not: echo a valid one for the client's logs.
			if id := r.Header.Get(CorrelationIDHeader); validCorrelationID(id) {
				w.Header().Set(CorrelationIDHeader, id)
				r = r.WithContext(WithCorrelationID(r.Context(), id))
			}
			// Connection: close makes net/http close the connection after
			// this answer, so the client's next attempt opens a connection
			// to another replica.
			w.Header().Set("Connection", "close")
			WriteProblem(w, r, NewProblem(http.StatusServiceUnavailable, "shutting-down", "Shutting down",
				"this server is shutting down; retry the request").Problem)
			return
		}
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if s.cfg.MaxBodyBytes > 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// Listen binds the address, so that a port in use fails at start rather than
// once the process looks healthy.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api server listening on %s: %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Draining reports whether Serve has begun to shut down.
func (s *Server) Draining() bool { return s.draining.Load() }

// ReadyCheck fails once the server drains; it fits admin.Server.AddCheck, so
// that readiness turns false with the first step of shutdown.
func (s *Server) ReadyCheck(context.Context) error {
	if s.draining.Load() {
		return errors.New("api server is shutting down")
	}
	return nil
}

// drainPoll is how often Serve looks whether the in-flight requests are done.
const drainPoll = 5 * time.Millisecond

// Serve serves on ln until ctx is done, then drains within DrainTimeout:
//
//  1. It closes ln, so new connections are refused, and answers every new
//     request on a connection that is still open with a 503 "shutting-down"
//     problem and Connection: close.
//  2. It waits for the in-flight requests to finish. Keep-alive connections
//     stay open meanwhile, so a client that sends on one is told to go
//     elsewhere by the 503 instead of finding the connection cut.
//  3. http.Server.Shutdown closes the idle connections and waits for the
//     last answers to be written.
//
// It returns nil when all of that fits in DrainTimeout. Otherwise it closes
// every connection, which cancels the contexts of the requests still running,
// and returns an error naming how many were left. Request contexts do not
// derive from ctx: cancelling ctx starts the drain, it does not abort work.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(ln) }()
	s.logger.Info().Str("addr", ln.Addr().String()).Msg("api server listening")
	select {
	case err := <-errc:
		_ = s.srv.Close()
		return fmt.Errorf("api server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	deadline := time.Now().Add(s.cfg.DrainTimeout)
	// Refuse connections first, so that whoever sees Draining() also finds
	// the port closed.
	_ = ln.Close()
	s.draining.Store(true)
	s.logger.Info().Int64("in_flight", s.inFlight.Load()).Dur("drain_timeout", s.cfg.DrainTimeout).Msg("api server draining")
	// http.Server.Serve returns once its listener is closed. Shutdown must
	// not start before: it would close the listener a second time and
	// report that as its error.
	wait := time.NewTimer(time.Until(deadline))
	select {
	case <-errc:
	case <-wait.C:
	}
	wait.Stop()

	s.awaitInFlight(deadline)

	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		left := s.inFlight.Load()
		_ = s.srv.Close()
		return fmt.Errorf("api server drain: %d requests still in flight after %s: %w", left, s.cfg.DrainTimeout, err)
	}
	s.logger.Info().Msg("api server drained")
	return nil
}

// awaitInFlight returns when no request is in flight or at deadline. A
// request that slipped past the guard just as draining began is counted a
// moment later; Shutdown still waits for it, since its connection is active.
func (s *Server) awaitInFlight(deadline time.Time) {
	if s.inFlight.Load() == 0 {
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for s.inFlight.Load() > 0 {
		select {
		case <-timer.C:
			return
		case <-tick.C:
		}
	}
}

// errorLogWriter sends net/http's own complaints (TLS handshakes,
// superfluous WriteHeader calls, accept errors) to the service's logger
// instead of stderr.
type errorLogWriter struct{ l zerolog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("source", "net/http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
