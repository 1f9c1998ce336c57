// Command loadgen drives a realistic command load at a running orderstream
// over HTTP (pkg/httpload): N virtual clients for a duration or a number of
// commands, registering customers, adding addresses, creating orders and
// driving them through their lifecycle, with some invalid commands mixed
// in. It shows progress every second and ends with a table: commands/s,
// latency by command, answers by status, errors by kind and the
// commit→read-model latency. It exits 1 if anything unexpected happened
// (a 5xx or transport failure after the retries, a valid command refused,
// an invalid one carried out, a read model that never caught up), 2 on a
// bad flag.
//
//	go run ./pkg/cmd/loadgen -clients 16 -duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/orderstream/orderstream/pkg/httpload"
)

func main() {
	os.Exit(run())
}

func run() int {
	var cfg httpload.Config
	flag.StringVar(&cfg.CommandURL, "command-url", "http://127.0.0.1:8081", "command API base URL")
	flag.StringVar(&cfg.QueryURL, "query-url", "http://127.0.0.1:8082", "query API base URL; empty: no commit→read-model sampling")
	flag.IntVar(&cfg.Clients, "clients", 16, "virtual clients, each on aggregates of its own")
	flag.IntVar(&cfg.Commands, "commands", 0, "stop after this many commands in all (0: no limit)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: no limit; 30s when -commands is 0 too)")
	flag.IntVar(&cfg.InvalidEvery, "invalid-every", 20, "every n-th command of a client is one the API must refuse (0: none)")
	flag.IntVar(&cfg.ReadEvery, "read-every", 10, "every n-th committed command of a client is read back with min_version (0: none)")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the command mix")
	flag.IntVar(&cfg.Retries, "retries", httpload.DefaultRetries, "retries of a request with the same Idempotency-Key after a transport error, a 5xx or 409 request-in-progress")
	flag.DurationVar(&cfg.Timeout, "timeout", httpload.DefaultTimeout, "bound of each HTTP attempt")
	quiet := flag.Bool("quiet", false, "no progress lines")
	flag.Parse()
	if cfg.Commands == 0 && cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	if cfg.QueryURL == "" {
		cfg.ReadEvery = 0
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}

	// Ctrl-C stops the load and still prints what it saw.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "loadgen: %d clients against %s (reads: %s), seed %d\n", cfg.Clients, cfg.CommandURL, cfg.QueryURL, cfg.Seed)
	r, err := httpload.Run(ctx, cfg)
	if r != nil {
		r.Table(os.Stdout)
	}
	switch {
	case r == nil || (err != nil && ctx.Err() == nil):
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	case r.UnexpectedTotal() > 0:
		fmt.Fprintf(os.Stderr, "loadgen: %d unexpected outcomes\n", r.UnexpectedTotal())
		return 1
	}
	return 0
}
