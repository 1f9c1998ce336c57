package cdcsource

import (
	"errors"
	"time"

	"github.com/orderstream/orderstream/pkg/config"
)

// cdcLogTTL is the TTL of event_store's CDC log (schema/…/scylladb.cql).
// A confidence window that long would never read a row before it expires.
const cdcLogTTL = 24 * time.Hour

// Config tunes how the source polls the CDC log.
//
// ConfidenceWindow is the main trade-off. The reader only reads log rows
// whose cdc$time is at least ConfidenceWindow old, because a row can become
// visible later than rows with later timestamps (node clock skew, a slow
// Paxos commit, a replica catching up); once the reader has passed a time,
// a row that appears behind it is never read. A smaller window lowers the
// latency from commit to relay (it is the floor of that latency); a window
// shorter than the worst clock skew plus write delay loses notifications,
// which the relay then only recovers by its gap filling (a later event of
// the same aggregate) or its scan source. The library's 30 s default is
// safe but too slow for an outbox; 2 s suits NTP-synchronised nodes.
//
// QueryWindow and the poll delays set the load and the catch-up speed: a
// reader that is behind reads QueryWindow of log per query and waits
// PollInterval after a query that returned rows and MaxPollInterval after
// an empty one, so with the defaults it catches up on an idle log at 10
// times real time. Every group of streams (one per vnode) is polled
// separately, so the idle query rate is the number of vnodes divided by
// MaxPollInterval.
type Config struct {
	ConfidenceWindow time.Duration `mapstructure:"confidence_window" help:"how far behind now the CDC reader stays so that writes logged late are still read; lower cuts latency but loses events logged later than this (clock skew between nodes, slow writes), which only the scan source then recovers"`
	QueryWindow      time.Duration `mapstructure:"query_window" help:"span of CDC log time read by one query; larger catches up faster after a pause"`
	PollInterval     time.Duration `mapstructure:"poll_interval" help:"pause after a CDC query that returned rows (the shortest poll delay)"`
	MaxPollInterval  time.Duration `mapstructure:"max_poll_interval" help:"pause after a CDC query that returned nothing, and the first pause after a failed one; bounds latency on a quiet log and sets the idle query rate"`
	ProgressEvery    time.Duration `mapstructure:"progress_every" help:"how often each CDC stream's position is saved to relay_progress; changes since the last save are read again after a restart"`
}

// DefaultConfig favours latency: changes reach the relay about two seconds
// after their commit.
func DefaultConfig() Config {
	return Config{
		ConfidenceWindow: 2 * time.Second,
		QueryWindow:      10 * time.Second,
		PollInterval:     100 * time.Millisecond,
		MaxPollInterval:  time.Second,
		ProgressEvery:    time.Second,
	}
}

// Validate checks every key. Zero durations are rejected rather than passed
// on, because the library silently replaces a zero with its own default
// (30 s for the confidence window).
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			errs = append(errs, config.Errorf(key, format, args...))
		}
	}
	check(c.ConfidenceWindow > 0 && c.ConfidenceWindow < cdcLogTTL, "confidence_window",
		"must be positive and below the CDC log TTL of %s, got %s", cdcLogTTL, c.ConfidenceWindow)
	check(c.QueryWindow > 0, "query_window", "must be positive, got %s", c.QueryWindow)
	check(c.PollInterval > 0, "poll_interval", "must be positive, got %s", c.PollInterval)
	check(c.MaxPollInterval > 0 && c.MaxPollInterval >= c.PollInterval, "max_poll_interval",
		"must be positive and at least poll_interval (%s), got %s", c.PollInterval, c.MaxPollInterval)
	check(c.ProgressEvery > 0, "progress_every", "must be positive, got %s", c.ProgressEvery)
	return errors.Join(errs...)
}
