package supervise

import (
	"errors"
	"time"

	"github.com/orderstream/orderstream/pkg/config"
)

// Config tunes restarts and shutdown. A service embeds it under its own key
// (for example "supervise") and wraps Validate's errors with config.Nest.
type Config struct {
	InitialBackoff  time.Duration `mapstructure:"initial_backoff" help:"delay before the first restart of a failed worker"`
	MaxBackoff      time.Duration `mapstructure:"max_backoff" help:"upper bound of the restart delay; a worker that runs this long without failing starts over at initial_backoff"`
	RestartBudget   int           `mapstructure:"restart_budget" help:"restarts allowed per worker within budget_window before the process exits"`
	BudgetWindow    time.Duration `mapstructure:"budget_window" help:"sliding window in which restart_budget is counted"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout" help:"time workers get to stop after SIGTERM or a spent budget"`
}

// DefaultConfig rides out a dependency outage of a minute or so (backoff
// capped at 30s) but gives up on a worker that fails five times within five
// minutes, so that Kubernetes restarts the pod; the 20s shutdown timeout
// stays under Kubernetes' default 30s termination grace period.
func DefaultConfig() Config {
	return Config{
		InitialBackoff:  200 * time.Millisecond,
		MaxBackoff:      30 * time.Second,
		RestartBudget:   5,
		BudgetWindow:    5 * time.Minute,
		ShutdownTimeout: 20 * time.Second,
	}
}

// Validate reports every bad value, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.InitialBackoff <= 0 {
		errs = append(errs, config.Errorf("initial_backoff", "must be positive, got %s", c.InitialBackoff))
	}
	if c.MaxBackoff < c.InitialBackoff || c.MaxBackoff <= 0 {
		errs = append(errs, config.Errorf("max_backoff", "must be positive and at least initial_backoff (%s), got %s", c.InitialBackoff, c.MaxBackoff))
	}
	if c.RestartBudget < 1 {
		errs = append(errs, config.Errorf("restart_budget", "must be at least 1, got %d", c.RestartBudget))
	}
	if c.BudgetWindow <= 0 {
		errs = append(errs, config.Errorf("budget_window", "must be positive, got %s", c.BudgetWindow))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, config.Errorf("shutdown_timeout", "must be positive, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}
