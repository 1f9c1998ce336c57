package projector

import (
	"context"
	"errors"
	"net/http"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// ServiceConfig is the configuration of a projector service.
type ServiceConfig struct {
	service.StreamConfig `mapstructure:",squash"`
	Projector            Config `mapstructure:"projector"`
	Rebuild              bool   `mapstructure:"rebuild" help:"rebuild the read model from event_store before consuming (also: POST /rebuild on the admin server)"`
}

// DefaultServiceConfig has the admin server on adminAddr.
func DefaultServiceConfig(adminAddr string) *ServiceConfig {
	return &ServiceConfig{StreamConfig: service.DefaultStreamConfig(adminAddr), Projector: DefaultConfig()}
}

// Validate checks every part.
func (c *ServiceConfig) Validate() error {
	return errors.Join(c.StreamConfig.Validate(), config.Nest("projector", c.Projector.Validate()))
}

// Wire returns the service.Wire of a projector service for view: it
// connects to the database and the broker, adds the "lag" readiness check
// and POST /rebuild to the admin server, and runs the projector as one
// supervised worker.
func Wire[S any](view View[S]) service.Wire[*ServiceConfig] {
	return func(ctx context.Context, cfg *ServiceConfig, d *service.Deps) ([]supervise.Worker, error) {
		session, err := d.ConnectCQL(ctx, cfg.CQL)
		if err != nil {
			return nil, err
		}
		if _, err := d.ConnectKafka(ctx, cfg.Kafka); err != nil {
			return nil, err
		}
		store, err := eventstore.New(session, eventstore.DefaultConfig(), d.Registry, eventstore.WithTracerProvider(d.Tracer))
		if err != nil {
			return nil, err
		}
		p, err := New(cfg.Projector, view, session, store, d.Logger, d.Registry, WithTracerProvider(d.Tracer))
		if err != nil {
			return nil, err
		}
		if cfg.Rebuild {
			p.RequestRebuild()
		}
		d.Admin.AddCheck("lag", p.Ready)
		d.Admin.Handle(http.MethodPost, "/rebuild", p.RebuildHandler)
		return []supervise.Worker{{Name: "projector", Run: func(ctx context.Context) error {
			sc, err := cfg.Kafka.Sarama(d.Name)
			if err != nil {
				return err
			}
			return p.Run(ctx, cfg.Kafka.Brokers, sc)
		}}}, nil
	}
}
