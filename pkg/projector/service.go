package projector

import (
	"context"
	"errors"
	"net/http"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/service"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// ServiceConfig is the configuration of a projector service.
type ServiceConfig struct {
	service.StreamConfig `mapstructure:",squash"`
	Projector            Config `mapstructure:"projector"`
	Rebuild              bool   `mapstructure:"rebuild" help:"start a rebuild of the read model into a new generation at start, unless one runs (also: POST /rebuild on the admin server)"`
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
// and GET, POST and DELETE /rebuild to the admin server (the last two
// need the admin token), and runs the projector's workers, the consumer
// ("projector"), the redrive worker ("redrive"), the rebuild worker
// ("rebuild") and the auditor ("audit"), supervised each on its own. The
// consumer group is built on the Kafka client whose connections the
// "kafka" readiness check pings.
func Wire[S any](view View[S]) service.Wire[*ServiceConfig] {
	return func(ctx context.Context, cfg *ServiceConfig, d *service.Deps) ([]supervise.Worker, error) {
		session, err := d.ConnectCQL(ctx, cfg.CQL)
		if err != nil {
			return nil, err
		}
		client, err := d.ConnectKafka(ctx, cfg.Kafka, service.WithSarama(record.ConsumerConfig))
		if err != nil {
			return nil, err
		}
		store, err := eventstore.New(session, cfg.EventStore, d.Registry, eventstore.WithTracerProvider(d.Tracer))
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
		// GET shows the progress; the others change something and
		// require the admin token (admin.token).
		d.Admin.Handle(http.MethodGet, "/rebuild", p.StatusHandler)
		d.Admin.Handle(http.MethodPost, "/rebuild", p.RebuildHandler)
		d.Admin.Handle(http.MethodDelete, "/rebuild", p.CancelHandler)
		d.Admin.Handle(http.MethodPost, "/rebuild/cancel", p.CancelHandler)
		audit, err := p.auditWorkers(session, d.Registry) // the auditor ("audit"), unless projector.audit.enabled is false
		if err != nil {
			return nil, err
		}
		return append(p.Workers(client), audit...), nil
	}
}
