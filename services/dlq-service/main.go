// Command dlq-service lets operators see, retry and purge what the relay and the projectors could not process.
package main

import (
	"context"
	"os"

	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of dlq-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
}

func defaultConfig() *Config {
	return &Config{StoreConfig: service.DefaultStoreConfig(":9083")}
}

func main() {
	os.Exit(service.Main("dlq-service", os.Args[1:], defaultConfig(), wire))
}

// wire builds the service's dependencies and returns its workers. The
// workers arrive with issue 8; until then the process connects, reports
// health and stops cleanly.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	if _, err := d.ConnectCQL(ctx, cfg.CQL); err != nil {
		return nil, err
	}
	return nil, nil
}
