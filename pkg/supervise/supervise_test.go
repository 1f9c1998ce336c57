package supervise_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/supervise"
)

const (
	waitFor = 5 * time.Second // generous: only reached when a test fails
	tick    = time.Millisecond
)

// fastConfig keeps every test in milliseconds.
func fastConfig() supervise.Config {
	return supervise.Config{
		InitialBackoff:  time.Millisecond,
		MaxBackoff:      4 * time.Millisecond,
		RestartBudget:   100,
		BudgetWindow:    time.Minute,
		ShutdownTimeout: 2 * time.Second,
	}
}

// syncBuffer lets worker goroutines log while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLogger logs to a buffer rather than t.Log, because an abandoned worker
// may log after the test has ended; the buffer is shown when a test fails.
func newLogger(t *testing.T) (zerolog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor log:\n%s", buf)
		}
	})
	return zerolog.New(buf), buf
}

// run starts s.Run and returns a stop function that cancels its context and
// a channel that receives Run's result. Cleanup stops it if the test did not.
func run(t *testing.T, s *supervise.Supervisor) (stop context.CancelFunc, result <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(cancel)
	return cancel, errc
}

// wait returns Run's result, failing the test if it takes longer than d.
func wait(t *testing.T, result <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-result:
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %s", d)
		return nil
	}
}

// blocking is a well-behaved worker body: it runs until told to stop.
func blocking(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// failNTimes fails n times, then behaves like blocking.
func failNTimes(n int32, err error) func(context.Context) error {
	var calls atomic.Int32
	return func(ctx context.Context) error {
		if calls.Add(1) <= n {
			return err
		}
		return blocking(ctx)
	}
}

func isRunning(s *supervise.Supervisor, name string) func() bool {
	return func() bool { return s.States()[name].Status == supervise.StatusRunning }
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*supervise.Config)
		keys   []string
	}{
		{name: "defaults", modify: func(*supervise.Config) {}},
		{name: "zero initial backoff", modify: func(c *supervise.Config) { c.InitialBackoff = 0 }, keys: []string{"initial_backoff"}},
		{name: "max below initial", modify: func(c *supervise.Config) { c.MaxBackoff = c.InitialBackoff / 2 }, keys: []string{"max_backoff"}},
		{name: "zero budget", modify: func(c *supervise.Config) { c.RestartBudget = 0 }, keys: []string{"restart_budget"}},
		{name: "negative window", modify: func(c *supervise.Config) { c.BudgetWindow = -time.Second }, keys: []string{"budget_window"}},
		{name: "zero shutdown timeout", modify: func(c *supervise.Config) { c.ShutdownTimeout = 0 }, keys: []string{"shutdown_timeout"}},
		{
			name:   "everything wrong",
			modify: func(c *supervise.Config) { *c = supervise.Config{RestartBudget: -1} },
			keys:   []string{"initial_backoff", "max_backoff", "restart_budget", "budget_window", "shutdown_timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := supervise.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.keys) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *config.FieldError
				require.ErrorAs(t, e, &fe)
				got = append(got, fe.Key)
			}
			require.Equal(t, tt.keys, got)
		})
	}
}

func TestNewRejects(t *testing.T) {
	ok := supervise.Worker{Name: "relay", Run: blocking}
	tests := []struct {
		name    string
		cfg     supervise.Config
		workers []supervise.Worker
		want    string
	}{
		{name: "invalid config", cfg: supervise.Config{}, workers: []supervise.Worker{ok}, want: `config key "initial_backoff"`},
		{name: "empty name", cfg: fastConfig(), workers: []supervise.Worker{ok, {Run: blocking}}, want: "worker 1 has no name"},
		{name: "duplicate name", cfg: fastConfig(), workers: []supervise.Worker{ok, ok}, want: `duplicate worker name "relay"`},
		{name: "nil run", cfg: fastConfig(), workers: []supervise.Worker{{Name: "relay"}}, want: `worker "relay" has a nil Run`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := supervise.New(tt.cfg, zerolog.Nop(), prometheus.NewRegistry(), tt.workers...)
			require.ErrorContains(t, err, tt.want)
			require.Nil(t, s)
		})
	}

	t.Run("metrics already registered", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		_, err := supervise.New(fastConfig(), zerolog.Nop(), reg, ok)
		require.NoError(t, err)
		_, err = supervise.New(fastConfig(), zerolog.Nop(), reg, ok)
		require.ErrorContains(t, err, "registering metrics")
	})
}

func TestNilRegistererDisablesMetrics(t *testing.T) {
	s, err := supervise.New(fastConfig(), zerolog.Nop(), nil, supervise.Worker{Name: "relay", Run: failNTimes(1, errors.New("boom"))})
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, func() bool { return s.States()["relay"].Restarts == 1 }, waitFor, tick)
	stop()
	require.NoError(t, wait(t, result, waitFor))
}

func TestRunTwice(t *testing.T) {
	s, err := supervise.New(fastConfig(), zerolog.Nop(), nil, supervise.Worker{Name: "relay", Run: blocking})
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, isRunning(s, "relay"), waitFor, tick)
	require.ErrorContains(t, s.Run(t.Context()), "more than once")
	stop()
	require.NoError(t, wait(t, result, waitFor))
}

func TestRestartsWithGrowingBackoff(t *testing.T) {
	cfg := fastConfig()
	cfg.InitialBackoff = 4 * time.Millisecond
	cfg.MaxBackoff = time.Second
	logger, logs := newLogger(t)

	const starts = 5
	var (
		mu    sync.Mutex
		times []time.Time
	)
	s, err := supervise.New(cfg, logger, nil, supervise.Worker{Name: "flaky", Run: func(ctx context.Context) error {
		mu.Lock()
		if len(times) == starts {
			mu.Unlock()
			return blocking(ctx)
		}
		times = append(times, time.Now())
		mu.Unlock()
		return errors.New("connection refused")
	}})
	require.NoError(t, err)
	stop, result := run(t, s)

	require.Eventually(t, func() bool { return s.States()["flaky"].Restarts == starts }, waitFor, tick)
	stop()
	require.NoError(t, wait(t, result, waitFor))

	// Equal jitter keeps restart n at least InitialBackoff*2^n/2 after the
	// failure before it, and a timer never fires early, so these lower
	// bounds hold however slow the machine; by the fourth restart the delay
	// is well beyond InitialBackoff.
	mu.Lock()
	defer mu.Unlock()
	nominal := cfg.InitialBackoff
	for i := 1; i < len(times); i++ {
		require.GreaterOrEqual(t, times[i].Sub(times[i-1]), nominal/2, "gap before start %d", i)
		nominal *= 2
	}
	require.Greater(t, times[starts-1].Sub(times[starts-2]), 2*cfg.InitialBackoff)

	st := s.States()["flaky"]
	require.Equal(t, "connection refused", st.LastError)
	require.Contains(t, logs.String(), `"worker":"flaky"`)
	require.Contains(t, logs.String(), "restarting after backoff")
}

func TestPanicIsRecoveredAndRestarted(t *testing.T) {
	logger, logs := newLogger(t)
	var calls atomic.Int32
	s, err := supervise.New(fastConfig(), logger, nil, supervise.Worker{Name: "projector", Run: func(ctx context.Context) error {
		if calls.Add(1) <= 2 {
			var items []int
			_ = items[calls.Load()] // index out of range: a real runtime panic
		}
		return blocking(ctx)
	}})
	require.NoError(t, err)
	stop, result := run(t, s)

	require.Eventually(t, func() bool {
		st := s.States()["projector"]
		return st.Status == supervise.StatusRunning && st.Restarts == 2
	}, waitFor, tick)
	require.Contains(t, s.States()["projector"].LastError, "panic: runtime error: index out of range")
	require.NoError(t, s.Ready(t.Context()))
	require.Contains(t, logs.String(), `"stack":"goroutine`)

	stop()
	require.NoError(t, wait(t, result, waitFor))
	require.Equal(t, supervise.StatusStopped, s.States()["projector"].Status)
}

func TestBudgetExhaustedStopsEveryWorker(t *testing.T) {
	cfg := fastConfig()
	cfg.RestartBudget = 3
	var (
		failures  atomic.Int32
		steadyCtx context.Context
		returned  atomic.Bool
	)
	ready := make(chan struct{})
	s, err := supervise.New(cfg, zerolog.Nop(), nil,
		supervise.Worker{Name: "steady", Run: func(ctx context.Context) error {
			steadyCtx = ctx
			close(ready)
			<-ctx.Done()
			// Cleanup that takes a while shows that Run waits for it.
			time.Sleep(20 * time.Millisecond)
			returned.Store(true)
			return nil
		}},
		supervise.Worker{Name: "relay", Run: func(ctx context.Context) error {
			<-ready // fail only once steady is running, so its ctx is set
			failures.Add(1)
			return errors.New("broker unreachable")
		}},
	)
	require.NoError(t, err)
	_, result := run(t, s)

	err = wait(t, result, waitFor)
	require.ErrorIs(t, err, supervise.ErrBudgetExhausted)
	require.ErrorContains(t, err, "worker relay")
	require.ErrorContains(t, err, "broker unreachable")
	require.Equal(t, int32(cfg.RestartBudget+1), failures.Load())

	require.True(t, returned.Load(), "Run returned before the other worker did")
	require.ErrorIs(t, context.Cause(steadyCtx), supervise.ErrBudgetExhausted)

	states := s.States()
	require.Equal(t, supervise.StatusFailed, states["relay"].Status)
	require.Equal(t, cfg.RestartBudget, states["relay"].Restarts)
	require.Equal(t, supervise.StatusStopped, states["steady"].Status)
	require.ErrorIs(t, s.Ready(t.Context()), supervise.ErrBudgetExhausted)
}

func TestShutdownWaitsForWorkers(t *testing.T) {
	var cleaned atomic.Int32
	slowStop := func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // cleanup work, well within the timeout
		cleaned.Add(1)
		return ctx.Err()
	}
	s, err := supervise.New(fastConfig(), zerolog.Nop(), nil,
		supervise.Worker{Name: "relay", Run: slowStop},
		supervise.Worker{Name: "projector", Run: slowStop},
		supervise.Worker{Name: "migrate", Run: func(context.Context) error { return nil }},
	)
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, func() bool { return s.Ready(t.Context()) == nil }, waitFor, tick)

	stop()
	require.NoError(t, wait(t, result, waitFor))
	require.Equal(t, int32(2), cleaned.Load())
	states := s.States()
	require.Equal(t, supervise.StatusStopped, states["relay"].Status)
	require.Empty(t, states["relay"].LastError, "context.Canceled on stop is not an error")
	require.Equal(t, supervise.StatusDone, states["migrate"].Status)
}

func TestShutdownTimeoutAbandonsStuckWorker(t *testing.T) {
	cfg := fastConfig()
	cfg.ShutdownTimeout = 100 * time.Millisecond
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s, err := supervise.New(cfg, zerolog.Nop(), nil,
		supervise.Worker{Name: "relay", Run: blocking},
		supervise.Worker{Name: "stuck", Run: func(context.Context) error {
			<-release // ignores its context
			return nil
		}},
	)
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, func() bool { return s.Ready(t.Context()) == nil }, waitFor, tick)

	stopped := time.Now()
	stop()
	err = wait(t, result, waitFor)
	elapsed := time.Since(stopped)

	require.ErrorIs(t, err, supervise.ErrShutdownTimeout)
	require.ErrorContains(t, err, "still running: stuck")
	require.NotContains(t, err.Error(), "relay")
	require.GreaterOrEqual(t, elapsed, cfg.ShutdownTimeout)
	require.Less(t, elapsed, cfg.ShutdownTimeout+250*time.Millisecond)
}

func TestBackoffIsInterruptedByShutdown(t *testing.T) {
	cfg := fastConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	s, err := supervise.New(cfg, zerolog.Nop(), nil, supervise.Worker{Name: "relay", Run: func(context.Context) error {
		return errors.New("boom")
	}})
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, func() bool { return s.States()["relay"].Status == supervise.StatusBackoff }, waitFor, tick)

	stop()
	require.NoError(t, wait(t, result, time.Second))
	require.Equal(t, supervise.StatusStopped, s.States()["relay"].Status)
}

func TestFinishedWorkersKeepRunWaiting(t *testing.T) {
	s, err := supervise.New(fastConfig(), zerolog.Nop(), nil,
		supervise.Worker{Name: "migrate", Run: func(context.Context) error { return nil }},
		supervise.Worker{Name: "warmup", Run: func(context.Context) error { return nil }},
	)
	require.NoError(t, err)
	stop, result := run(t, s)
	require.Eventually(t, func() bool {
		states := s.States()
		return states["migrate"].Status == supervise.StatusDone && states["warmup"].Status == supervise.StatusDone
	}, waitFor, tick)
	require.NoError(t, s.Ready(t.Context()))
	require.Never(t, func() bool { return len(result) > 0 }, 50*time.Millisecond, 5*time.Millisecond,
		"Run returned although ctx is still live")
	require.Zero(t, s.States()["migrate"].Restarts)

	stop()
	require.NoError(t, wait(t, result, waitFor))
}

func TestReady(t *testing.T) {
	slow := fastConfig()
	slow.InitialBackoff, slow.MaxBackoff = time.Hour, time.Hour
	tests := []struct {
		name    string
		cfg     supervise.Config
		workers []supervise.Worker
		want    []string // substrings of the error; nil means ready
		// restarts to wait for first, so that a worker caught running
		// before its first failure does not pass for a recovered one
		restarts map[string]int
	}{
		{
			name:    "all running",
			cfg:     fastConfig(),
			workers: []supervise.Worker{{Name: "relay", Run: blocking}, {Name: "projector", Run: blocking}},
		},
		{
			name:    "one finished, one running",
			cfg:     fastConfig(),
			workers: []supervise.Worker{{Name: "migrate", Run: func(context.Context) error { return nil }}, {Name: "relay", Run: blocking}},
		},
		{
			name:     "running again after a failure",
			cfg:      fastConfig(),
			workers:  []supervise.Worker{{Name: "relay", Run: failNTimes(1, errors.New("boom"))}},
			restarts: map[string]int{"relay": 1},
		},
		{
			name: "one in backoff",
			cfg:  slow,
			workers: []supervise.Worker{
				{Name: "relay", Run: func(context.Context) error { return errors.New("dial tcp: connection refused") }},
				{Name: "projector", Run: blocking},
			},
			want: []string{"worker relay: restarting after failure: dial tcp: connection refused"},
		},
		{
			name: "two in backoff",
			cfg:  slow,
			workers: []supervise.Worker{
				{Name: "relay", Run: func(context.Context) error { return errors.New("a") }},
				{Name: "projector", Run: func(context.Context) error { return errors.New("b") }},
			},
			want: []string{"worker relay: restarting after failure: a", "worker projector: restarting after failure: b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := supervise.New(tt.cfg, zerolog.Nop(), nil, tt.workers...)
			require.NoError(t, err)
			require.ErrorContains(t, s.Ready(t.Context()), "not started")

			stop, result := run(t, s)
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				states := s.States()
				for name, n := range tt.restarts {
					require.GreaterOrEqual(c, states[name].Restarts, n, "restarts of %s", name)
				}
				err := s.Ready(t.Context())
				if tt.want == nil {
					require.NoError(c, err)
					return
				}
				for _, w := range tt.want {
					require.ErrorContains(c, err, w)
				}
			}, waitFor, tick)

			stop()
			require.NoError(t, wait(t, result, waitFor))
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := supervise.New(fastConfig(), zerolog.Nop(), reg,
		supervise.Worker{Name: "relay", Run: failNTimes(2, errors.New("boom"))},
		supervise.Worker{Name: "migrate", Run: func(context.Context) error { return nil }},
	)
	require.NoError(t, err)

	// Every series exists from the start, so that alerts see zeros.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP orderstream_supervisor_worker_up 1 while a worker is running, 0 otherwise.
# TYPE orderstream_supervisor_worker_up gauge
orderstream_supervisor_worker_up{worker="migrate"} 0
orderstream_supervisor_worker_up{worker="relay"} 0
`), "orderstream_supervisor_worker_up"))

	stop, result := run(t, s)
	require.Eventually(t, func() bool {
		st := s.States()
		return st["relay"].Status == supervise.StatusRunning && st["relay"].Restarts == 2 &&
			st["migrate"].Status == supervise.StatusDone
	}, waitFor, tick)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP orderstream_supervisor_worker_failures_total Failures (errors and panics) of a worker before shutdown.
# TYPE orderstream_supervisor_worker_failures_total counter
orderstream_supervisor_worker_failures_total{worker="migrate"} 0
orderstream_supervisor_worker_failures_total{worker="relay"} 2
# HELP orderstream_supervisor_worker_restarts_total Restarts of a worker after a failure.
# TYPE orderstream_supervisor_worker_restarts_total counter
orderstream_supervisor_worker_restarts_total{worker="migrate"} 0
orderstream_supervisor_worker_restarts_total{worker="relay"} 2
# HELP orderstream_supervisor_worker_up 1 while a worker is running, 0 otherwise.
# TYPE orderstream_supervisor_worker_up gauge
orderstream_supervisor_worker_up{worker="migrate"} 0
orderstream_supervisor_worker_up{worker="relay"} 1
`)))

	stop()
	require.NoError(t, wait(t, result, waitFor))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP orderstream_supervisor_worker_up 1 while a worker is running, 0 otherwise.
# TYPE orderstream_supervisor_worker_up gauge
orderstream_supervisor_worker_up{worker="migrate"} 0
orderstream_supervisor_worker_up{worker="relay"} 0
`), "orderstream_supervisor_worker_up"))
}

func TestNoWorkersWaitsForShutdown(t *testing.T) {
	s, err := supervise.New(fastConfig(), zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Never(t, func() bool { return len(done) > 0 }, 50*time.Millisecond, 5*time.Millisecond)
	require.NoError(t, s.Ready(ctx))
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// While a dependency is down, a worker failing on it waits for the
// dependency without spending its budget, however many times it fails;
// once the dependency is back it runs again. With the dependency up the
// budget counts as before.
func TestOutageOfADependencyDoesNotSpendTheBudget(t *testing.T) {
	cfg := fastConfig()
	cfg.RestartBudget = 2
	var (
		down     atomic.Bool
		failures atomic.Int32
		checks   atomic.Int32
	)
	down.Store(true)
	s, err := supervise.New(cfg, zerolog.Nop(), nil, supervise.Worker{Name: "relay", Run: func(ctx context.Context) error {
		if down.Load() {
			failures.Add(1)
			return errors.New("database unreachable")
		}
		return blocking(ctx)
	}})
	require.NoError(t, err)
	s.WaitForDependencies(func(context.Context) error {
		checks.Add(1)
		if down.Load() {
			return errors.New("cql: no connection")
		}
		return nil
	})
	_, result := run(t, s)

	require.Eventually(t, func() bool { return checks.Load() > 10 }, waitFor, tick, "the supervisor polls the dependency")
	require.Equal(t, int32(1), failures.Load(), "the worker waits for the dependency instead of failing again and again")
	require.Equal(t, supervise.StatusBackoff, s.States()["relay"].Status)
	require.Error(t, s.Ready(t.Context()))
	down.Store(false)
	require.Eventually(t, isRunning(s, "relay"), waitFor, tick)
	require.NoError(t, s.Ready(t.Context()))
	select {
	case err := <-result:
		t.Fatalf("Run returned %v", err)
	default:
	}
}
