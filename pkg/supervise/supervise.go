// Package supervise is the supervision loop of a service process: it owns
// every long-running worker, restarts a failed one with backoff, stops the
// process when a worker keeps failing (so that Kubernetes restarts the pod),
// derives readiness from the workers' states, and bounds graceful shutdown so
// that one stuck worker cannot hold a terminating pod past its grace period.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// ErrBudgetExhausted is wrapped by Run's error when a worker failed more
// than Config.RestartBudget times within Config.BudgetWindow; main should
// exit non-zero so that the pod is restarted.
var ErrBudgetExhausted = errors.New("restart budget exhausted")

// ErrShutdownTimeout is wrapped by Run's error when workers were still
// running Config.ShutdownTimeout after being told to stop. Their goroutines
// are abandoned, so main should exit promptly rather than go on.
var ErrShutdownTimeout = errors.New("shutdown timeout exceeded")

// Worker is a named long-running function. Run must return when ctx is done.
// A nil return before shutdown means the worker finished its job: it is not
// restarted and counts as healthy. A non-nil return, or a panic, which the
// supervisor recovers and turns into an error, is a failure: the worker is
// restarted with backoff.
type Worker struct {
	Name string
	Run  func(ctx context.Context) error
}

// Status is where a worker is in its life.
type Status string

// A worker is StatusStarting until Supervisor.Run launches it, then
// alternates between StatusRunning and StatusBackoff while it fails and is
// restarted, and ends in StatusDone (returned nil before shutdown),
// StatusFailed (spent its restart budget) or StatusStopped (shut down).
const (
	StatusStarting Status = "starting"
	StatusRunning  Status = "running"
	StatusBackoff  Status = "backoff"
	StatusDone     Status = "done"
	StatusFailed   Status = "failed"
	StatusStopped  Status = "stopped"
)

// State is a snapshot of one worker for health endpoints and logs.
type State struct {
	Status Status
	// Restarts counts every restart since Run began, not only those within
	// the budget window.
	Restarts int
	// LastError is the worker's most recent failure; it is kept after the
	// worker recovers, so that a health page can still show what happened.
	LastError string
	// Since is when the worker entered Status.
	Since time.Time
}

// Supervisor runs a fixed set of workers. Build it with New; Run it once.
type Supervisor struct {
	cfg     Config
	logger  zerolog.Logger
	metrics supervisorMetrics
	workers []*worker
	ran     atomic.Bool
	deps    func(context.Context) error // nil: no dependencies to wait for

	mu sync.Mutex // guards the state and exited fields of every worker
}

type worker struct {
	Worker
	log zerolog.Logger

	state  State
	exited bool // its goroutine has returned; false for a worker still stuck in Run
}

type supervisorMetrics struct {
	restarts *prometheus.CounterVec
	failures *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

// New checks cfg and the workers and registers the supervisor's metrics on
// reg; a nil reg disables metrics. Worker names must be unique and non-empty
// because they label logs, metrics and readiness errors. A supervisor with
// no workers is valid: its Run waits for shutdown, so a service whose work
// has not been built yet still starts, reports health and stops cleanly.
func New(cfg Config, logger zerolog.Logger, reg prometheus.Registerer, workers ...Worker) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	s := &Supervisor{cfg: cfg, logger: logger, metrics: newMetrics()}
	now := time.Now()
	seen := make(map[string]bool, len(workers))
	for i, w := range workers {
		switch {
		case w.Name == "":
			return nil, fmt.Errorf("supervise: worker %d has no name", i)
		case seen[w.Name]:
			return nil, fmt.Errorf("supervise: duplicate worker name %q", w.Name)
		case w.Run == nil:
			return nil, fmt.Errorf("supervise: worker %q has a nil Run", w.Name)
		}
		seen[w.Name] = true
		s.workers = append(s.workers, &worker{
			Worker: w,
			log:    logger.With().Str("worker", w.Name).Logger(),
			state:  State{Status: StatusStarting, Since: now},
		})
		// Touch every series so that dashboards and alerts see zeros rather
		// than absent series before the first failure.
		s.metrics.restarts.WithLabelValues(w.Name)
		s.metrics.failures.WithLabelValues(w.Name)
		s.metrics.up.WithLabelValues(w.Name).Set(0)
	}
	if reg != nil {
		if err := s.metrics.register(reg); err != nil {
			return nil, fmt.Errorf("supervise: registering metrics: %w", err)
		}
	}
	return s, nil
}

func newMetrics() supervisorMetrics {
	return supervisorMetrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Subsystem: "supervisor",
			Name:      "worker_restarts_total",
			Help:      "Restarts of a worker after a failure.",
		}, []string{"worker"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Subsystem: "supervisor",
			Name:      "worker_failures_total",
			Help:      "Failures (errors and panics) of a worker before shutdown.",
		}, []string{"worker"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace,
			Subsystem: "supervisor",
			Name:      "worker_up",
			Help:      "1 while a worker is running, 0 otherwise.",
		}, []string{"worker"}),
	}
}

// register registers all three collectors or none, so that a failed New
// leaves reg as it found it.
func (m supervisorMetrics) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{m.restarts, m.failures, m.up}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

// Run starts every worker and blocks until ctx is done or a worker spends
// its restart budget, then cancels the workers' context and waits for them,
// at most Config.ShutdownTimeout.
//
// Workers that all finish with nil do not end Run: it keeps waiting for ctx
// so that the process stays up and serves health until it is told to stop.
//
// Run returns nil after a shutdown in time; an error wrapping
// ErrBudgetExhausted if a worker spent its budget (naming it and wrapping its
// last error); and an error wrapping ErrShutdownTimeout, naming the workers
// still running, if they did not stop in time. In the last case Run returns
// at the deadline and leaves the stuck goroutines behind. Worker contexts
// derive from ctx, so they carry its values; after a spent budget,
// context.Cause of a worker's context is Run's error.
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return errors.New("supervise: Run called more than once")
	}
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// Buffered for every worker so that a worker spending its budget never
	// blocks, even after Run stopped listening.
	exhausted := make(chan error, len(s.workers))
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(func() { s.supervise(workCtx, w, exhausted) })
	}
	s.logger.Info().Int("workers", len(s.workers)).Msg("supervisor started")

	var runErr error
	select {
	case <-ctx.Done():
		s.logger.Info().Dur("timeout", s.cfg.ShutdownTimeout).Msg("shutting down workers")
	case runErr = <-exhausted:
		s.logger.Error().Err(runErr).Dur("timeout", s.cfg.ShutdownTimeout).Msg("restart budget exhausted, stopping all workers")
		cancel(runErr)
	}

	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
		s.logger.Info().Msg("all workers stopped")
		return runErr
	case <-timer.C:
	}
	stuck := s.stuck()
	s.logger.Error().Strs("workers", stuck).Dur("timeout", s.cfg.ShutdownTimeout).
		Msg("workers did not stop within the shutdown timeout, abandoning them")
	timeoutErr := fmt.Errorf("%w (%s), workers still running: %s",
		ErrShutdownTimeout, s.cfg.ShutdownTimeout, strings.Join(stuck, ", "))
	if runErr != nil {
		return errors.Join(runErr, timeoutErr)
	}
	return timeoutErr
}

// supervise runs one worker until it finishes, spends its budget or ctx is
// done.
func (s *Supervisor) supervise(ctx context.Context, w *worker, exhausted chan<- error) {
	defer s.exit(w)
	bo := newRestarts(s.cfg.InitialBackoff, s.cfg.MaxBackoff)
	bud := budget{limit: s.cfg.RestartBudget, window: s.cfg.BudgetWindow}
	for {
		restarts := s.setStatus(w, StatusRunning, nil)
		w.log.Info().Int("restarts", restarts).Msg("worker starting")
		started := time.Now()
		err := runOnce(ctx, w.Run)

		if ctx.Err() != nil {
			// The error of a worker told to stop is not a failure, but one
			// other than the cancellation itself may explain a dirty stop.
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.Cause(ctx)) {
				w.log.Warn().Err(err).Msg("worker returned an error while stopping")
				s.setStatus(w, StatusStopped, err)
			} else {
				s.setStatus(w, StatusStopped, nil)
			}
			w.log.Info().Msg("worker stopped")
			return
		}
		if err == nil {
			s.setStatus(w, StatusDone, nil)
			w.log.Info().Msg("worker finished")
			return
		}

		s.metrics.failures.WithLabelValues(w.Name).Inc()
		if derr := s.dependencies(ctx); derr != nil {
			// The failure is the outage's, not the worker's: wait for the
			// dependencies without spending the budget, then start over.
			s.setStatus(w, StatusBackoff, err)
			logFailure(w.log.Warn(), err).Int("restarts", restarts).AnErr("dependency", derr).
				Msg("worker failed while a dependency is unreachable; waiting for it without spending the restart budget")
			if !s.waitDependencies(ctx) {
				s.setStatus(w, StatusStopped, nil)
				w.log.Info().Msg("worker stopped while waiting for its dependencies")
				return
			}
			bo = newRestarts(s.cfg.InitialBackoff, s.cfg.MaxBackoff)
			s.metrics.restarts.WithLabelValues(w.Name).Inc()
			s.mu.Lock()
			w.state.Restarts++
			s.mu.Unlock()
			continue
		}
		now := time.Now()
		if n, spent := bud.fail(now); spent {
			s.setStatus(w, StatusFailed, err)
			berr := fmt.Errorf("worker %s: %w (%d failures within %s), last error: %w",
				w.Name, ErrBudgetExhausted, n, s.cfg.BudgetWindow, err)
			logFailure(w.log.Error(), err).Int("restarts", restarts).Int("failures_in_window", n).
				Msg("worker failed and spent its restart budget")
			exhausted <- berr
			return
		}
		delay := bo.next(now.Sub(started))
		s.setStatus(w, StatusBackoff, err)
		logFailure(w.log.Error(), err).Int("restarts", restarts).Dur("backoff", delay).
			Msg("worker failed, restarting after backoff")
		if !sleep(ctx, delay) {
			s.setStatus(w, StatusStopped, nil)
			w.log.Info().Msg("worker stopped during backoff")
			return
		}
		s.metrics.restarts.WithLabelValues(w.Name).Inc()
		s.mu.Lock()
		w.state.Restarts++
		s.mu.Unlock()
	}
}

// WaitForDependencies makes a worker that fails while check fails (the
// database or the broker unreachable) wait until check passes, polled with
// backoff, and then start again, without spending its restart budget: an
// outage of a dependency is ridden out, however long, while readiness
// reports the worker in backoff; only failures with the dependencies up
// count towards the budget. Call it before Run.
func (s *Supervisor) WaitForDependencies(check func(context.Context) error) {
	s.deps = check
}

// dependencies runs the dependency check, if any.
func (s *Supervisor) dependencies(ctx context.Context) error {
	if s.deps == nil {
		return nil
	}
	return s.deps(ctx)
}

// waitDependencies polls the dependency check until it passes (true) or
// ctx ends (false).
func (s *Supervisor) waitDependencies(ctx context.Context) bool {
	bo := newRestarts(s.cfg.InitialBackoff, min(s.cfg.MaxBackoff, 5*time.Second))
	for {
		if !sleep(ctx, bo.next(0)) {
			return false
		}
		if s.dependencies(ctx) == nil {
			return true
		}
	}
}

// panicError is a recovered panic; the stack goes to the log, not into the
// message, which readiness errors repeat.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// Unwrap exposes a panic value that is an error to errors.Is and errors.As.
func (e *panicError) Unwrap() error {
	err, _ := e.value.(error)
	return err
}

func runOnce(ctx context.Context, run func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return run(ctx)
}

func logFailure(ev *zerolog.Event, err error) *zerolog.Event {
	ev = ev.Err(err)
	if pe, ok := errors.AsType[*panicError](err); ok {
		ev = ev.Str("stack", string(pe.stack))
	}
	return ev
}

// sleep waits for d and reports whether it did, or returns false as soon as
// ctx is done, so that shutdown never waits out a backoff.
func sleep(ctx context.Context, d time.Duration) bool { return backoff.Sleep(ctx, d) }

// setStatus moves w to status, recording err (if any) as its last error,
// and returns its restart count.
func (s *Supervisor) setStatus(w *worker, status Status, err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.state.Status = status
	w.state.Since = time.Now()
	if err != nil {
		w.state.LastError = err.Error()
	}
	up := 0.0
	if status == StatusRunning {
		up = 1
	}
	s.metrics.up.WithLabelValues(w.Name).Set(up)
	return w.state.Restarts
}

func (s *Supervisor) exit(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.exited = true
}

// stuck names the workers whose goroutines have not returned.
func (s *Supervisor) stuck() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, w := range s.workers {
		if !w.exited {
			names = append(names, w.Name)
		}
	}
	return names
}

// Ready returns nil when every worker is running or has finished with nil,
// and otherwise an error naming each worker that is not, with the reason,
// for example "worker relay: restarting after failure: <last error>".
// It reads the supervisor's state and never blocks; the context is there so
// that Ready fits the signature of a readiness check.
func (s *Supervisor) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, w := range s.workers {
		st := w.state
		switch st.Status {
		case StatusRunning, StatusDone:
		case StatusStarting:
			errs = append(errs, fmt.Errorf("worker %s: not started", w.Name))
		case StatusBackoff:
			errs = append(errs, fmt.Errorf("worker %s: restarting after failure: %s", w.Name, st.LastError))
		case StatusFailed:
			errs = append(errs, fmt.Errorf("worker %s: %w: %s", w.Name, ErrBudgetExhausted, st.LastError))
		default:
			errs = append(errs, fmt.Errorf("worker %s: %s", w.Name, st.Status))
		}
	}
	return errors.Join(errs...)
}

// States returns a snapshot of every worker's state by name.
func (s *Supervisor) States() map[string]State {
	s.mu.Lock()
	defer s.mu.Unlock()
	states := make(map[string]State, len(s.workers))
	for _, w := range s.workers {
		states[w.Name] = w.state
	}
	return states
}
