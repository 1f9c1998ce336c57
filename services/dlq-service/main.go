// Command dlq-service lets operators see, retry and purge what the relay and
// the projectors could not process (DESIGN.md, "The DLQ"): it lists and
// shows dead letters, re-drives them through the component that failed by
// writing retry requests that component carries out (it calls no other
// service), purges them (the head of a parked aggregate only with an
// explicit skip), and reports stats and gauges.
package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
	"github.com/orderstream/orderstream/pkg/tracing"
)

//go:embed openapi.json
var openAPI []byte

// Config is the configuration of dlq-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
	HTTP                httpapi.ServerConfig `mapstructure:"http"`
	DLQ                 DLQConfig            `mapstructure:"dlq"`
	// EventStore is read for the version of a parked aggregate (how many
	// events wait behind its dead letter).
	EventStore eventstore.Config `mapstructure:"eventstore"`
}

// DLQConfig tunes the DLQ API.
type DLQConfig struct {
	Token           string        `mapstructure:"token" help:"bearer token the mutating endpoints require (ORDERSTREAM_DLQ_TOKEN); with neither token nor token_file they answer 403"`
	TokenFile       string        `mapstructure:"token_file" help:"file holding the bearer token, read at start (a mounted Kubernetes secret); instead of token"`
	RetryTimeout    time.Duration `mapstructure:"retry_timeout" help:"how long a retry or skip waits for the component's outcome before answering 202 (still pending)"`
	PollEvery       time.Duration `mapstructure:"poll_every" help:"how often a waiting retry reads the outcome"`
	BulkRate        float64       `mapstructure:"bulk_rate" help:"retry and skip requests a bulk call starts per second, over all bulk calls of this replica"`
	BulkBurst       int           `mapstructure:"bulk_burst" help:"requests a bulk call may start at once before bulk_rate applies"`
	BulkParallelism int           `mapstructure:"bulk_parallelism" help:"requests of one bulk call awaiting their outcome at once"`
	BulkMax         int           `mapstructure:"bulk_max" help:"dead letters one bulk call handles at most (the answer says whether it got through all it matched)"`
	BulkTimeout     time.Duration `mapstructure:"bulk_timeout" help:"how long one bulk call works; requests not started by then are reported not attempted"`
	StatsEvery      time.Duration `mapstructure:"stats_every" help:"how often the dlq gauges are refreshed from the tables"`
}

// Validate checks every key.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			errs = append(errs, config.Errorf(key, format, args...))
		}
	}
	d := c.DLQ
	check(d.Token == "" || d.TokenFile == "", "dlq.token_file", "give either dlq.token or dlq.token_file, not both")
	check(d.Token == "" || len(d.Token) >= minTokenBytes, "dlq.token", "must be at least %d bytes, got %d", minTokenBytes, len(d.Token))
	// An answer must be written before the server's write timeout cuts
	// the connection.
	check(d.RetryTimeout > 0 && d.RetryTimeout < c.HTTP.WriteTimeout, "dlq.retry_timeout", "must be positive and shorter than http.write_timeout (%s), got %s", c.HTTP.WriteTimeout, d.RetryTimeout)
	check(d.PollEvery > 0 && d.PollEvery <= d.RetryTimeout, "dlq.poll_every", "must be positive and at most dlq.retry_timeout, got %s", d.PollEvery)
	check(d.BulkRate > 0, "dlq.bulk_rate", "must be positive, got %g", d.BulkRate)
	check(d.BulkBurst >= 1, "dlq.bulk_burst", "must be at least 1, got %d", d.BulkBurst)
	check(d.BulkParallelism >= 1 && d.BulkParallelism <= 256, "dlq.bulk_parallelism", "must be 1..256, got %d", d.BulkParallelism)
	check(d.BulkMax >= 1 && d.BulkMax <= 10000, "dlq.bulk_max", "must be 1..10000, got %d", d.BulkMax)
	check(d.BulkTimeout > 0 && d.BulkTimeout < c.HTTP.WriteTimeout, "dlq.bulk_timeout", "must be positive and shorter than http.write_timeout (%s), got %s", c.HTTP.WriteTimeout, d.BulkTimeout)
	check(d.StatsEvery > 0, "dlq.stats_every", "must be positive, got %s", d.StatsEvery)
	return errors.Join(append(errs, c.StoreConfig.Validate(), config.Nest("http", c.HTTP.Validate()), config.Nest("eventstore", c.EventStore.Validate()))...)
}

// minTokenBytes is the shortest bearer token accepted.
const minTokenBytes = 16

func defaultConfig() *Config {
	httpCfg := httpapi.DefaultServerConfig(":8083")
	// A bulk call waits for the components; give it time.
	httpCfg.WriteTimeout = 2 * time.Minute
	return &Config{
		StoreConfig: service.DefaultStoreConfig(":9083"),
		HTTP:        httpCfg,
		EventStore:  eventstore.DefaultConfig(),
		DLQ: DLQConfig{
			RetryTimeout: 20 * time.Second, PollEvery: 100 * time.Millisecond,
			BulkRate: 20, BulkBurst: 5, BulkParallelism: 8, BulkMax: 1000, BulkTimeout: 90 * time.Second,
			StatsEvery: 15 * time.Second,
		},
	}
}

func main() {
	os.Exit(service.Main("dlq-service", os.Args[1:], defaultConfig(), wire))
}

// wire connects to the database, serves the DLQ API and keeps the gauges
// current.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	session, err := d.ConnectCQL(ctx, cfg.CQL)
	if err != nil {
		return nil, err
	}
	token, err := loadToken(cfg.DLQ)
	if err != nil {
		return nil, err
	}
	if token == "" {
		d.Logger.Warn().Msg("neither dlq.token nor dlq.token_file is set: retries and purges are refused (403); listing and stats work")
	}
	events, err := eventstore.New(session, cfg.EventStore, d.Registry, eventstore.WithTracerProvider(d.Tracer))
	if err != nil {
		return nil, err
	}
	a, err := newAPI(deadletter.NewStore(session, cfg.CQL.Keyspace), events, cfg.DLQ, token, d.Logger, d.Registry)
	if err != nil {
		return nil, err
	}
	handler, err := newHandler(a, d.Logger, d.Registry, d.Tracer)
	if err != nil {
		return nil, err
	}
	workers, err := httpapi.Workers(cfg.HTTP, handler, d.Logger)
	if err != nil {
		return nil, err
	}
	return append(workers, supervise.Worker{Name: "stats", Run: a.q.refreshGauges}), nil
}

// loadToken reads the bearer token from the config or its file.
func loadToken(c DLQConfig) (string, error) {
	return config.ReadToken(c.Token, c.TokenFile, "dlq.token_file", minTokenBytes)
}

// newHandler builds the whole HTTP handler of the service.
func newHandler(a *api, logger zerolog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (http.Handler, error) {
	r, err := httpapi.NewRouter(openAPI, logger, reg, tp, tracing.Propagator())
	if err != nil {
		return nil, fmt.Errorf("building the router: %w", err)
	}
	a.routes(r)
	return r, nil
}
