// Package httpload drives a realistic command load at a running orderstream
// over its HTTP APIs, the way clients would: N virtual clients, each with
// customers and orders of its own, register customers, add addresses,
// create orders and drive them through their lifecycle (confirm, ship,
// deliver, or cancel), with some commands the domain must refuse mixed in.
// Every mutating request carries a unique Idempotency-Key and is retried
// with that same key on a transport error, a 5xx or a request still in
// progress, so a command-service that is killed and restarted mid-load is
// survived without committing anything twice. Every n-th committed command
// is followed by a read with min_version on the query API, which measures
// how long a commit takes to reach the read model.
//
// pkg/loadgen is its in-process sibling: the same lifecycles through the
// repositories, for tests and benches that do not run the services.
package httpload

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"
)

// Config shapes a load. The zero value of every tuning field takes its
// default (see withDefaults).
type Config struct {
	// CommandURL is the command API's base URL, e.g. http://127.0.0.1:8081.
	CommandURL string
	// QueryURL is the query API's base URL, e.g. http://127.0.0.1:8082;
	// empty: no commit→read-model sampling.
	QueryURL string
	// Clients is the number of virtual clients, each with its own sequence
	// of commands on aggregates of its own.
	Clients int
	// Commands stops the load after this many commands in all (0: no limit).
	Commands int
	// Duration stops the load after this long (0: no limit); at least one
	// of Commands and Duration must be set. Commands under way when it
	// passes are finished.
	Duration time.Duration
	// InvalidEvery makes every n-th command of a client one the API must
	// refuse (0: none): a transition the order's state does not allow, a
	// malformed body, an order without items or for an unknown customer,
	// an unknown order. Its expected 4xx is counted by kind, not as an
	// error.
	InvalidEvery int
	// ReadEvery follows every n-th committed command of a client with a
	// read with min_version on the query API, until it answers 200, to
	// measure commit→read-model latency (0: none; needs QueryURL).
	ReadEvery int
	// Seed makes the mix of commands repeatable (ids are random, so that
	// runs never collide).
	Seed uint64
	// Progress receives a progress line every second (nil: none).
	Progress io.Writer
	// Retries is how many times a request is sent again, with the same
	// Idempotency-Key, after a transport error, a 5xx or a 409
	// request-in-progress. Default 20, with a backoff from Backoff doubling
	// up to MaxBackoff (plus up to half again of jitter): 76 to 115 s in
	// all, longer than command-service's idempotency lease (1 min), for
	// which a request cut off by a crash keeps its key (its retries are
	// answered 409 request-in-progress until then).
	Retries int
	// Backoff is the wait before the first retry (default 100 ms).
	Backoff time.Duration
	// MaxBackoff caps the wait between retries (default 5 s).
	MaxBackoff time.Duration
	// Timeout bounds each HTTP attempt (default 10 s).
	Timeout time.Duration
	// ReadTimeout bounds how long a commit may take to reach the read
	// model before the read counts as an unexpected "read timeout"
	// (default 30 s).
	ReadTimeout time.Duration
}

// Defaults of the tuning fields.
const (
	DefaultRetries     = 20
	DefaultBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultReadTimeout = 30 * time.Second
)

// withDefaults returns c with every unset tuning field at its default.
func (c Config) withDefaults() Config {
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// Validate reports every field that cannot work, naming it.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(validURL(c.CommandURL), "CommandURL: want an http(s) URL, got %q", c.CommandURL)
	check(c.QueryURL == "" || validURL(c.QueryURL), "QueryURL: want an http(s) URL or empty, got %q", c.QueryURL)
	check(c.Clients >= 1, "Clients: want at least 1, got %d", c.Clients)
	check(c.Commands >= 0, "Commands: want 0 (no limit) or more, got %d", c.Commands)
	check(c.Duration >= 0, "Duration: want 0 (no limit) or more, got %s", c.Duration)
	check(c.Commands > 0 || c.Duration > 0, "Commands, Duration: set at least one, or the load never stops")
	check(c.InvalidEvery >= 0 && c.InvalidEvery != 1, "InvalidEvery: want 0 (none) or 2 and more, got %d", c.InvalidEvery)
	check(c.ReadEvery >= 0, "ReadEvery: want 0 (none) or more, got %d", c.ReadEvery)
	check(c.ReadEvery == 0 || c.QueryURL != "", "ReadEvery: reads need QueryURL")
	check(c.Retries >= 0, "Retries: want 0 (default) or more, got %d", c.Retries)
	check(c.Backoff >= 0 && c.MaxBackoff >= 0 && c.Timeout >= 0 && c.ReadTimeout >= 0, "Backoff, MaxBackoff, Timeout, ReadTimeout: want 0 (default) or more")
	return errors.Join(errs...)
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
