package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// The views query-service reads, by the name their projector gives them
// in projection_generations.
var (
	orderView         = readmodel.OrderReadModel().Name
	customerOrderView = readmodel.OrdersByCustomer().Name
	statusOrderView   = readmodel.OrdersByStatus().Name
	customerView      = readmodel.CustomerReadModel().Name
)

// generations tells which generation of each view's tables to read: the
// active one of projection_generations (a rebuild switches it, DESIGN.md
// "Projectors"), re-read at most every ttl by one request while the others
// use what was read. A view's active generation only moves forward here,
// even should a replica of the table answer an older row: a newer
// generation is never behind an older one, so a reader never sees a row
// go back in version across a switch.
type generations struct {
	load   func(ctx context.Context) (map[string]projector.Generations, error)
	ttl    time.Duration
	logger zerolog.Logger
	gauge  *prometheus.GaugeVec

	mu     sync.Mutex
	gens   map[string]projector.Generations
	readAt time.Time
}

func newGenerations(session *gocql.Session, ttl time.Duration, logger zerolog.Logger, reg prometheus.Registerer) (*generations, error) {
	g := &generations{
		load: func(ctx context.Context) (map[string]projector.Generations, error) {
			return projector.ReadGenerations(ctx, session)
		},
		ttl:    ttl,
		logger: logger,
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "query", Name: "view_generation",
			Help: "The generation of each view's tables query-service reads (projection_generations, re-read every query.generation_cache).",
		}, []string{"view"}),
	}
	if reg != nil {
		if err := reg.Register(g.gauge); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// of returns the generations of view, re-read when older than ttl. A
// failed re-read goes on with the last read (logged); with none read yet
// it fails.
func (g *generations) of(ctx context.Context, view string) (projector.Generations, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gens == nil || time.Since(g.readAt) >= g.ttl {
		fresh, err := g.load(ctx)
		switch {
		case err != nil && g.gens == nil:
			return projector.Generations{}, fmt.Errorf("reading the views' generations: %w", err)
		case err != nil:
			g.logger.Warn().Err(err).Msg("re-reading the views' generations; going on with the last read")
		default:
			for name, prev := range g.gens {
				if cur, ok := fresh[name]; !ok || cur.Active < prev.Active {
					cur.Active = prev.Active // never back (a stale replica)
					if !ok {
						cur.Last = prev.Active
					}
					fresh[name] = cur
				}
			}
			g.gens, g.readAt = fresh, time.Now()
			for name, cur := range fresh {
				g.gauge.WithLabelValues(name).Set(float64(cur.Active))
			}
		}
	}
	if cur, ok := g.gens[view]; ok {
		return cur, nil
	}
	return projector.Generations{Active: 1, Last: 1}, nil
}

// active is the generation of view's tables to read now.
func (g *generations) active(ctx context.Context, view string) (readmodel.Generation, error) {
	cur, err := g.of(ctx, view)
	if err != nil {
		return 0, err
	}
	return readmodel.Generation(cur.Active), nil
}

// forToken is the generation to go on reading a listing of view whose page
// token was issued in generation gen: gen itself while it is active or
// retiring, else a 410 problem that says to restart the listing.
func (g *generations) forToken(ctx context.Context, view string, gen int) (readmodel.Generation, error) {
	cur, err := g.of(ctx, view)
	if err != nil {
		return 0, err
	}
	if cur.Readable(gen, time.Now()) {
		return readmodel.Generation(gen), nil
	}
	return 0, httpapi.NewProblem(http.StatusGone, "page-token-expired", "Page token expired",
		fmt.Sprintf("the listing's page token is of generation %d of the view, which a rebuild has replaced (now %d); restart the listing without page_token", gen, cur.Active)).
		WithField("page_token").WithCode("query.page_token_expired")
}
