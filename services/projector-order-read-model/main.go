// Command projector-order-read-model projects order events into order_read_model.
package main

import (
	"context"
	"os"

	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// Config is the configuration of projector-order-read-model.
type Config struct {
	service.StreamConfig `mapstructure:",squash"`
}

func defaultConfig() *Config {
	return &Config{StreamConfig: service.DefaultStreamConfig(":9085")}
}

func main() {
	os.Exit(service.Main("projector-order-read-model", os.Args[1:], defaultConfig(), wire))
}

// wire builds the service's dependencies and returns its workers. The
// workers arrive with issue 6; until then the process connects, reports
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
