// Command cdc-relay turns committed events into Redpanda records, in order per aggregate, never lost.
package main

import (
	"context"
	"os"

	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of cdc-relay.
type Config struct {
	service.StreamConfig `mapstructure:",squash"`
}

func defaultConfig() *Config {
	return &Config{StreamConfig: service.DefaultStreamConfig(":9084")}
}

func main() {
	os.Exit(service.Main("cdc-relay", os.Args[1:], defaultConfig(), wire))
}

// wire builds the service's dependencies and returns its workers. The
// workers arrive with issue 5; until then the process connects, reports
// health and stops cleanly.
func wire(ctx context.Context, cfg *Config, d *service.Deps) ([]supervise.Worker, error) {
	if _, err := d.ConnectCQL(ctx, cfg.CQL); err != nil {
		return nil, err
	}
	if _, err := d.ConnectKafka(ctx, cfg.Kafka); err != nil {
		return nil, err
	}
	return nil, nil
}
