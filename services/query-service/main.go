// Command query-service serves the read models and the event history over HTTP.
package main

import (
	"context"
	"os"

	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of query-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
}

func defaultConfig() *Config {
	return &Config{StoreConfig: service.DefaultStoreConfig(":9082")}
}

func main() {
	os.Exit(service.Main("query-service", os.Args[1:], defaultConfig(), wire))
}

// wire builds the service's dependencies and returns its workers. The
// workers arrive with issue 7; until then the process connects, reports
// health and stops cleanly.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	if _, err := d.ConnectCQL(ctx, cfg.CQL); err != nil {
		return nil, err
	}
	return nil, nil
}
