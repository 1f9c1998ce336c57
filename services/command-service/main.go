// Command command-service accepts Order and Customer commands over HTTP and commits their events to the event store in one conditional batch each.
package main

import (
	"context"
	"os"

	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of command-service.
type Config struct {
	service.StoreConfig `mapstructure:",squash"`
}

func defaultConfig() *Config {
	return &Config{StoreConfig: service.DefaultStoreConfig(":9081")}
}

func main() {
	os.Exit(service.Main("command-service", os.Args[1:], defaultConfig(), wire))
}

// wire builds the service's dependencies and returns its workers. The
// workers arrive with issue 4; until then the process connects, reports
// health and stops cleanly.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	if _, err := d.ConnectCQL(ctx, cfg.CQL); err != nil {
		return nil, err
	}
	return nil, nil
}
