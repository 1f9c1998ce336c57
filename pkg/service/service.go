// Package service runs one orderstream process: it loads the config, builds
// the logger, the metrics registry and the tracer provider, lets the
// service wire its dependencies and workers, then runs the supervision loop
// and the admin server until SIGTERM or SIGINT.
//
// A service's main is one call:
//
//	func main() { os.Exit(service.Main("cdc-relay", os.Args[1:], &cfg, wire)) }
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/admin"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/supervise"
	"github.com/orderstream/orderstream/pkg/tracing"
)

// Version is the build's version, set with -ldflags "-X ...service.Version=…".
var Version = "dev"

// Exit codes of a service process.
const (
	ExitOK     = 0
	ExitFailed = 1 // a worker exhausted its restart budget, or shutdown overran
	ExitConfig = 2 // the configuration is invalid; the message names the key
)

// Base is the configuration every service has.
type Base struct {
	Log       logging.Config   `mapstructure:"log"`
	Admin     admin.Config     `mapstructure:"admin"`
	Tracing   tracing.Config   `mapstructure:"tracing"`
	Supervise supervise.Config `mapstructure:"supervise"`
}

// DefaultBase is the base configuration of a service whose admin server
// listens on adminAddr.
func DefaultBase(adminAddr string) Base {
	return Base{
		Log:       logging.DefaultConfig(),
		Admin:     admin.DefaultConfig(adminAddr),
		Tracing:   tracing.DefaultConfig(),
		Supervise: supervise.DefaultConfig(),
	}
}

// Validate checks every part of the base configuration.
func (b Base) Validate() error {
	return errors.Join(
		config.Nest("log", b.Log.Validate()),
		config.Nest("admin", b.Admin.Validate()),
		config.Nest("tracing", b.Tracing.Validate()),
		config.Nest("supervise", b.Supervise.Validate()),
	)
}

// Config is a service's configuration: it embeds Base (tagged
// `mapstructure:",squash"`) and validates itself, Base included.
type Config interface {
	config.Validator
	BaseConfig() Base
}

// BaseConfig returns the base configuration; embedding Base gives every
// service config this method.
func (b Base) BaseConfig() Base { return b }

// Deps are what the runner builds for the service's wiring function.
type Deps struct {
	Name     string
	Logger   zerolog.Logger
	Registry *prometheus.Registry
	Tracer   trace.TracerProvider
	Admin    *admin.Server

	mu           sync.Mutex
	closers      []func()
	dependencies []string // names of the readiness checks that are dependencies
}

// OnClose registers a function run at shutdown after every worker has
// stopped, in reverse order of registration (close sessions last-opened
// first).
func (d *Deps) OnClose(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closers = append(d.closers, f)
}

func (d *Deps) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// Wire builds a service's dependencies and returns its workers. It may
// register readiness checks on d.Admin and closers with d.OnClose.
type Wire[C Config] func(ctx context.Context, cfg C, d *Deps) ([]supervise.Worker, error)

// Main runs the service and returns the process exit code. cfg must be a
// pointer to the service's config, already holding its defaults.
func Main[C Config](name string, args []string, cfg C, wire Wire[C]) int {
	return run(name, args, cfg, wire, os.Stdout, os.Stderr)
}

func run[C Config](name string, args []string, cfg C, wire Wire[C], stdout, stderr io.Writer) int {
	if err := config.Load(name, args, cfg); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", name, err)
		return ExitConfig
	}
	base := cfg.BaseConfig()
	logger := logging.New(base.Log, stdout, name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, name, cfg, wire, logger); err != nil {
		logger.Error().Err(err).Msg("service stopped with an error")
		return ExitFailed
	}
	return ExitOK
}

// Run wires and runs a service until ctx is done, with an already loaded
// config; tests call it directly.
func Run[C Config](ctx context.Context, name string, cfg C, wire Wire[C], logger zerolog.Logger) error {
	base := cfg.BaseConfig()
	logger.Info().Str("version", Version).Msg("starting")

	reg := metrics.NewRegistry(name, Version)
	tp, flush, err := tracing.New(ctx, base.Tracing, name, Version)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := flush(fctx); err != nil {
			logger.Warn().Err(err).Msg("flushing traces")
		}
	}()

	adm := admin.New(base.Admin, logger, reg)
	ln, err := adm.Listen()
	if err != nil {
		return err
	}
	deps := &Deps{Name: name, Logger: logger, Registry: reg, Tracer: tp, Admin: adm}
	defer deps.close()

	// The admin server answers /healthz while dependencies are still being
	// reached, and reports not ready until wiring is done.
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	adminDone := make(chan error, 1)
	go func() { adminDone <- adm.Serve(adminCtx, ln, 2*time.Second) }()
	defer func() {
		stopAdmin()
		if err := <-adminDone; err != nil {
			logger.Warn().Err(err).Msg("admin server")
		}
	}()
	wiring := errors.New("starting: dependencies not wired yet")
	ready := make(chan struct{})
	adm.AddCheck("startup", func(context.Context) error {
		select {
		case <-ready:
			return nil
		default:
			return wiring
		}
	})

	workers, err := wire(ctx, cfg, deps)
	if err != nil {
		return fmt.Errorf("wiring %s: %w", name, err)
	}
	sup, err := supervise.New(base.Supervise, logger, reg, workers...)
	if err != nil {
		return fmt.Errorf("building supervisor: %w", err)
	}
	// A worker failing while a dependency the wiring connected to (the
	// database, the broker: Deps.Dependency) is unreachable waits for it
	// instead of spending its restart budget.
	sup.WaitForDependencies(deps.dependenciesReady)
	adm.AddCheck("workers", sup.Ready)
	close(ready)

	logger.Info().Int("workers", len(workers)).Msg("running")
	err = sup.Run(ctx)
	logger.Info().Msg("stopped")
	return err
}
