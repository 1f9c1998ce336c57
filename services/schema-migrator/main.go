// Command schema-migrator applies orderstream's CQL migrations (the schema/
// folder, embedded) to the configured keyspace exactly once, then exits. It
// runs as a Kubernetes Job before every install and upgrade, and from
// `make up` locally; running it again, or several at once, is safe.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/migrate"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/schema"
)

const name = "schema-migrator"

// Config is the migrator's configuration.
type Config struct {
	Log     logging.Config `mapstructure:"log"`
	CQL     cql.Config     `mapstructure:"cql"`
	Migrate migrate.Config `mapstructure:"migrate"`
}

// Validate checks every part.
func (c *Config) Validate() error {
	return errors.Join(
		config.Nest("log", c.Log.Validate()),
		config.Nest("cql", c.CQL.Validate()),
		config.Nest("migrate", c.Migrate.Validate()),
	)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := &Config{Log: logging.DefaultConfig(), CQL: cql.DefaultConfig(), Migrate: migrate.DefaultConfig()}
	if err := config.Load(name, args, cfg); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return service.ExitOK
		}
		fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", name, err)
		return service.ExitConfig
	}
	logger := logging.New(cfg.Log, stdout, name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := apply(ctx, cfg, logger); err != nil {
		logger.Error().Err(err).Msg("migration failed")
		return service.ExitFailed
	}
	return service.ExitOK
}

func apply(ctx context.Context, cfg *Config, logger zerolog.Logger) error {
	session, err := cql.Connect(ctx, cfg.CQL, "", logger)
	if err != nil {
		return err
	}
	defer session.Close()
	flavour, err := cql.DetectFlavour(ctx, session)
	if err != nil {
		return err
	}
	migrations, err := migrate.Load(schema.FS, flavour, cfg.CQL.Keyspace)
	if err != nil {
		return err
	}
	res, err := migrate.New(session, cfg.CQL.Keyspace, flavour, cfg.Migrate, logger).Apply(ctx, migrations)
	if err != nil {
		return fmt.Errorf("after applying %v: %w", res.Applied, err)
	}
	logger.Info().Str("keyspace", cfg.CQL.Keyspace).Str("flavour", string(flavour)).
		Ints("applied", res.Applied).Ints("already_applied", res.Skipped).Msg("schema up to date")
	return nil
}
