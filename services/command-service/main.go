// Command command-service accepts Order and Customer commands over HTTP and
// commits their events to the event store in one conditional batch each.
package main

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
	"github.com/orderstream/orderstream/pkg/tracing"
)

//go:embed openapi.json
var openAPI []byte

// Config is the configuration of command-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
	HTTP                httpapi.ServerConfig `mapstructure:"http"`
	EventStore          eventstore.Config    `mapstructure:"eventstore"`
	Commands            CommandsConfig       `mapstructure:"commands"`
	Hints               HintsConfig          `mapstructure:"hints"`
	// Personal seals customers' personal data (personal.* keys,
	// docs/personal-data.md).
	Personal PersonalConfig `mapstructure:"personal"`
	// Forget guards POST /v1/customers/{id}/forget (forget.* keys).
	Forget ForgetConfig `mapstructure:"forget"`
	// Kafka is the broker the commit hints go to; read only with
	// hints.enabled.
	Kafka kafka.Config `mapstructure:"kafka"`
	// Repository sizes the caches of folded aggregate states
	// (repository.cache_size, repository.cache_ttl; issue 18).
	Repository repository.CacheConfig `mapstructure:"repository"`
}

// CommandsConfig tunes command handling.
type CommandsConfig struct {
	MaxConflictRetries int           `mapstructure:"max_conflict_retries" help:"times a command is re-decided after losing a race before answering 409"`
	IdempotencyTTL     time.Duration `mapstructure:"idempotency_ttl" help:"how long an Idempotency-Key and its answer are kept"`
	// RequestTimeout is every command request's deadline, and so how long
	// it holds its Idempotency-Key: a retry of a request that died is
	// answered 409 until the deadline has passed, then takes the key over.
	RequestTimeout time.Duration `mapstructure:"request_timeout" help:"deadline of each command request; also how long a request owns its Idempotency-Key before a retry may take it over"`
}

// Validate checks every part.
func (c *Config) Validate() error {
	var errs []error
	if c.Commands.MaxConflictRetries < 0 || c.Commands.MaxConflictRetries > 100 {
		errs = append(errs, config.Errorf("commands.max_conflict_retries", "must be 0..100, got %d", c.Commands.MaxConflictRetries))
	}
	if c.Commands.IdempotencyTTL < time.Minute {
		errs = append(errs, config.Errorf("commands.idempotency_ttl", "must be at least 1m, got %s", c.Commands.IdempotencyTTL))
	}
	if c.Commands.RequestTimeout < 100*time.Millisecond || (c.HTTP.WriteTimeout > 0 && c.Commands.RequestTimeout > c.HTTP.WriteTimeout) {
		errs = append(errs, config.Errorf("commands.request_timeout", "must be 100ms..http.write_timeout (%s), got %s", c.HTTP.WriteTimeout, c.Commands.RequestTimeout))
	}
	if c.Hints.Enabled {
		errs = append(errs, config.Nest("kafka", c.Kafka.Validate()))
	}
	if c.Personal.Enabled {
		errs = append(errs, config.Nest("personal", c.Personal.Config.Validate()))
	}
	return errors.Join(append(errs,
		c.StoreConfig.Validate(),
		config.Nest("http", c.HTTP.Validate()),
		config.Nest("eventstore", c.EventStore.Validate()),
		config.Nest("hints", c.Hints.Validate()),
		config.Nest("forget", c.Forget.Validate()),
		config.Nest("repository", c.Repository.Validate()),
	)...)
}

func defaultConfig() *Config {
	return &Config{
		StoreConfig: service.DefaultStoreConfig(":9081"),
		HTTP:        httpapi.DefaultServerConfig(":8081"),
		EventStore:  eventstore.DefaultConfig(),
		Commands:    CommandsConfig{MaxConflictRetries: 5, IdempotencyTTL: 24 * time.Hour, RequestTimeout: 10 * time.Second},
		Hints:       DefaultHintsConfig(),
		Kafka:       kafka.DefaultConfig(),
		Personal:    PersonalConfig{Config: personal.DefaultConfig()},
		Repository:  repository.DefaultCacheConfig(),
	}
}

func main() {
	os.Exit(service.Main("command-service", os.Args[1:], defaultConfig(), wire))
}

// wire connects to the database and serves the command API; with
// hints.enabled, the worker "hints" sends the commit hints (it connects to
// the broker itself, and the service is ready without it: hints are best
// effort).
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	session, err := d.ConnectCQL(ctx, cfg.CQL)
	if err != nil {
		return nil, err
	}
	var hints *hintSender
	if cfg.Hints.Enabled {
		if hints, err = newHintSender(cfg.Hints, kafkaHintProducer(cfg.Kafka, d.Name), d.Logger, d.Registry); err != nil {
			return nil, err
		}
	}
	handler, err := newHandler(session, cfg, d.Logger, d.Registry, d.Tracer, hints)
	if err != nil {
		return nil, err
	}
	workers, err := httpapi.Workers(cfg.HTTP, handler, d.Logger)
	if err != nil {
		return nil, err
	}
	if hints != nil {
		workers = append(workers, supervise.Worker{Name: "hints", Run: hints.Run})
	}
	return workers, nil
}

// newHandler builds the whole HTTP handler of the service on a session;
// every commit offers its hint to hints (nil: hints off).
func newHandler(session *gocql.Session, cfg *Config, logger zerolog.Logger, reg prometheus.Registerer, tp trace.TracerProvider, hints *hintSender) (http.Handler, error) {
	es, err := eventstore.New(session, cfg.EventStore, reg, eventstore.WithTracerProvider(tp), eventstore.WithCommitMetrics())
	if err != nil {
		return nil, err
	}
	up := eventcodec.NewUpcasters()
	var (
		store eventstore.RepositoryStore = es
		keys  *personal.Keyring
	)
	if cfg.Personal.Enabled {
		if keys, err = newKeyring(session, cfg.Personal.Config, logger, reg); err != nil {
			return nil, err
		}
		if store, err = repository.NewSealing(store, keys, up, orderOwnerCache, logger); err != nil {
			return nil, err
		}
	} else {
		logger.Warn().Msg("personal.enabled is false: customers' personal data is stored and published in clear, and forgetting a customer is refused")
	}
	if hints != nil {
		store = hintingStore{RepositoryStore: store, hints: hints}
	}
	rc := eventstore.RepositoryConfig{MaxConflictRetries: cfg.Commands.MaxConflictRetries}
	orders, err := repository.NewOrders(store, up, rc, logger, reg)
	if err != nil {
		return nil, err
	}
	customers, err := repository.NewCustomers(store, up, rc, logger, reg)
	if err != nil {
		return nil, err
	}
	// The caches sit above the sealing store: they hold opened states, in
	// memory only, and a forget drops its customer's (forget.go). es reads
	// the stored version that CanOrder checks a cached customer against.
	if err := repository.UseStateCaches(orders, customers, cfg.Repository, es, reg); err != nil {
		return nil, err
	}
	prop := tracing.Propagator()
	a, err := newAPI(orders, customers, cfg.HTTP.MaxBodyBytes, tp, prop, logger, reg)
	if err != nil {
		return nil, err
	}
	if a.forgetting, err = newForgetting(cfg.Forget, keys, logger); err != nil {
		return nil, err
	}
	idem := &idempotency{session: session, ttl: cfg.Commands.IdempotencyTTL, lease: cfg.Commands.RequestTimeout, maxBody: cfg.HTTP.MaxBodyBytes}

	r, err := httpapi.NewRouter(openAPI, logger, reg, tp, prop)
	if err != nil {
		return nil, err
	}
	a.middleware = []func(http.Handler) http.Handler{deadline(cfg.Commands.RequestTimeout), idem.middleware}
	a.routes(r)
	return r, nil
}
