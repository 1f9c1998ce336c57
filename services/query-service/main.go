// Command query-service serves the read models and the event history over
// HTTP: orders and customers by id (now, at any past version, or once the
// read model has caught up with a version the client wrote), the order
// lists by customer and by status, and each aggregate's events.
package main

import (
	"context"
	"crypto/rand"
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
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
	"github.com/orderstream/orderstream/pkg/tracing"
)

//go:embed openapi.json
var openAPI []byte

// Config is the configuration of query-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
	HTTP                httpapi.ServerConfig `mapstructure:"http"`
	EventStore          eventstore.Config    `mapstructure:"eventstore"`
	Query               QueryConfig          `mapstructure:"query"`
	// Personal opens customers' sealed personal data in the answers
	// (personal.* keys, personal.go, docs/personal-data.md).
	Personal PersonalConfig `mapstructure:"personal"`
}

// QueryConfig tunes the queries.
type QueryConfig struct {
	PageTokenKey      string        `mapstructure:"page_token_key" help:"secret that signs page tokens (at least 32 bytes; every replica needs the same); empty: a random key per process, so tokens do not survive a restart"`
	MinVersionTimeout time.Duration `mapstructure:"min_version_timeout" help:"how long a read with min_version waits for the read model to reach that version before answering 409"`
	GenerationCache   time.Duration `mapstructure:"generation_cache" help:"how long the active generation of each view (projection_generations) is cached before it is read again"`
}

// minPageTokenKey is the shortest key accepted: HMAC-SHA256's own size.
const minPageTokenKey = 32

// Validate checks every part.
func (c *Config) Validate() error {
	var errs []error
	if c.Query.PageTokenKey != "" && len(c.Query.PageTokenKey) < minPageTokenKey {
		errs = append(errs, config.Errorf("query.page_token_key", "must be at least %d bytes, got %d", minPageTokenKey, len(c.Query.PageTokenKey)))
	}
	// The wait must end, and the answer be written, before the server's
	// write timeout cuts the connection.
	if c.Query.MinVersionTimeout <= 0 || c.Query.MinVersionTimeout >= c.HTTP.WriteTimeout {
		errs = append(errs, config.Errorf("query.min_version_timeout", "must be positive and shorter than http.write_timeout (%s), got %s", c.HTTP.WriteTimeout, c.Query.MinVersionTimeout))
	}
	// Short, so that readers follow a rebuild's switch within seconds,
	// well within a replaced generation's grace period.
	if c.Query.GenerationCache <= 0 || c.Query.GenerationCache > time.Minute {
		errs = append(errs, config.Errorf("query.generation_cache", "must be positive and at most 1m, got %s", c.Query.GenerationCache))
	}
	return errors.Join(append(errs,
		c.StoreConfig.Validate(),
		config.Nest("http", c.HTTP.Validate()),
		config.Nest("eventstore", c.EventStore.Validate()),
		config.Nest("personal", c.Personal.Validate()),
	)...)
}

func defaultConfig() *Config {
	return &Config{
		StoreConfig: service.DefaultStoreConfig(":9082"),
		HTTP:        httpapi.DefaultServerConfig(":8082"),
		EventStore:  eventstore.DefaultConfig(),
		Query:       QueryConfig{MinVersionTimeout: 2 * time.Second, GenerationCache: time.Second},
		Personal:    PersonalConfig{Config: personal.DefaultConfig()},
	}
}

func main() {
	os.Exit(service.Main("query-service", os.Args[1:], defaultConfig(), wire))
}

// wire connects to the database and serves the query API.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	session, err := d.ConnectCQL(ctx, cfg.CQL)
	if err != nil {
		return nil, err
	}
	if cfg.Query.PageTokenKey == "" {
		d.Logger.Warn().Msg("query.page_token_key is not set: page tokens are signed with a random key and stop working when this process restarts or another replica answers")
	}
	handler, err := newHandler(session, cfg, d.Logger, d.Registry, d.Tracer)
	if err != nil {
		return nil, err
	}
	return httpapi.Workers(cfg.HTTP, handler, d.Logger)
}

// newHandler builds the whole HTTP handler of the service on a session.
func newHandler(session *gocql.Session, cfg *Config, logger zerolog.Logger, reg prometheus.Registerer, tp trace.TracerProvider) (http.Handler, error) {
	store, err := eventstore.New(session, cfg.EventStore, reg, eventstore.WithTracerProvider(tp))
	if err != nil {
		return nil, err
	}
	key := []byte(cfg.Query.PageTokenKey)
	if len(key) == 0 {
		key = make([]byte, minPageTokenKey)
		_, _ = rand.Read(key) // never fails (crypto/rand)
	}
	keys, err := newOpener(session, cfg.Personal, logger, reg)
	if err != nil {
		return nil, err
	}
	a, err := newAPI(session, store, eventcodec.NewUpcasters(), newSigner(key), cfg.Query.MinVersionTimeout, logger, reg, tp, personalData{open: keys, logger: logger})
	if err != nil {
		return nil, err
	}
	if a.gens, err = newGenerations(session, cfg.Query.GenerationCache, logger, reg); err != nil {
		return nil, err
	}
	prop := tracing.Propagator()

	r, err := httpapi.NewRouter(openAPI, logger, reg, tp, prop)
	if err != nil {
		return nil, err
	}
	a.routes(r)
	return r, nil
}
