// Package logging builds the zerolog logger every service is given. There is
// no global logger: main builds one and passes it to every constructor.
package logging

import (
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
)

// Config selects the level and the output format.
type Config struct {
	Level  string `mapstructure:"level" help:"log level: trace, debug, info, warn, error"`
	Format string `mapstructure:"format" help:"json or console"`
}

// DefaultConfig logs JSON at info level.
func DefaultConfig() Config { return Config{Level: "info", Format: "json"} }

// Validate checks the level and the format.
func (c Config) Validate() error {
	if _, err := zerolog.ParseLevel(c.Level); err != nil || c.Level == "" {
		return config.Errorf("level", "unknown level %q (want trace, debug, info, warn or error)", c.Level)
	}
	if c.Format != "json" && c.Format != "console" {
		return config.Errorf("format", "unknown format %q (want json or console)", c.Format)
	}
	return nil
}

// New returns a logger writing to w with the service name on every line.
func New(cfg Config, w io.Writer, service string) zerolog.Logger {
	level, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339Nano}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", service).Logger()
}
