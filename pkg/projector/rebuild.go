package projector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// EventStore is what a projector needs of the event store: an aggregate's
// version and events (to fill gaps and re-drive) and the heads of every
// aggregate, token range by token range (to rebuild). *eventstore.Store
// and its in-memory twin (eventstore/memstore) satisfy it.
type EventStore interface {
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
}

// RequestRebuild asks a running Run to stop consuming, rebuild, and resume.
// It returns false when a rebuild is already requested or running.
func (p *Projector[S]) RequestRebuild() bool {
	if p.rebuilding.Load() {
		return false
	}
	select {
	case p.rebuildReq <- struct{}{}:
		return true
	default:
		return false
	}
}

// RebuildHandler serves POST /rebuild on the admin server: 202 when the
// rebuild was requested, 409 when one is already under way.
func (p *Projector[S]) RebuildHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !p.RequestRebuild() {
		w.WriteHeader(http.StatusConflict)
		_, _ = fmt.Fprintf(w, `{"status":"a rebuild of %s is already requested or running"}`+"\n", p.view.Name)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"status":"rebuild of %s requested; watch orderstream_projector_rebuild_aggregates"}`+"\n", p.view.Name)
}

func (p *Projector[S]) rebuildPending(ctx context.Context) (bool, error) {
	var status string
	err := p.session.Query(`SELECT status FROM projection_rebuilds WHERE projection_name = ?`, p.view.Name).WithContext(ctx).Scan(&status)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading projection_rebuilds: %w", err)
	}
	return status == "running", nil
}

// Rebuild replays the whole event_store into an empty read model: it marks
// the rebuild as running (so that a crash redoes it), truncates the view's
// tables, folds every aggregate of the view's type from its first event,
// writes its rows and checkpoint, and marks the rebuild done. It must not
// run while this projector consumes (Run pauses consumption for it); the
// records that arrive meanwhile wait in Kafka and are then skipped up to
// each aggregate's new checkpoint and applied after it, so there is no gap
// and no double apply.
func (p *Projector[S]) Rebuild(ctx context.Context) (err error) {
	// A root span: a rebuild replays the events of many commands' traces.
	ctx, span := p.tracer.Start(ctx, "projector rebuild", trace.WithAttributes(attrProjection.String(p.view.Name)))
	defer func() { endSpan(span, err) }()
	p.rebuilding.Store(true)
	p.m.rebuilding.Set(1)
	defer func() {
		p.rebuilding.Store(false)
		p.m.rebuilding.Set(0)
	}()
	p.forget()
	defer p.forget()
	start := time.Now()
	if err := p.session.Query(`INSERT INTO projection_rebuilds (projection_name, status, started_at, aggregates, events) VALUES (?, 'running', ?, 0, 0)`,
		p.view.Name, start.UTC()).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("recording the rebuild: %w", err)
	}
	for _, t := range p.view.Tables {
		if err := p.session.Query(`TRUNCATE ` + t).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("truncating %s: %w", t, err)
		}
	}
	p.logger.Info().Strs("tables", p.view.Tables).Msg("rebuild started; tables truncated")

	var aggregates, events atomic.Int64
	p.m.rebuildAggregates.Set(0)
	p.m.rebuildEvents.Set(0)
	ids := make(chan gocql.UUID, 256)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ids)
		for _, rg := range eventstore.SplitTokens(p.cfg.RebuildRanges) {
			err := p.store.HeadsInRange(gctx, rg, func(h eventstore.Head) error {
				if h.AggregateType != p.view.AggregateType {
					return nil
				}
				select {
				case ids <- h.AggregateID:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
			if err != nil {
				return fmt.Errorf("scanning the event store: %w", err)
			}
		}
		return nil
	})
	for range p.cfg.RebuildParallelism {
		g.Go(func() error {
			for id := range ids {
				n, err := p.rebuildAggregate(gctx, id)
				if err != nil {
					return err
				}
				p.m.rebuildAggregates.Set(float64(aggregates.Add(1)))
				p.m.rebuildEvents.Set(float64(events.Add(n)))
			}
			return nil
		})
	}
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
wait:
	for {
		select {
		case <-progress.C:
			p.logger.Info().Int64("aggregates", aggregates.Load()).Int64("events", events.Load()).Dur("elapsed", time.Since(start)).Msg("rebuilding")
		case err = <-done:
			break wait
		}
	}
	if err != nil {
		return fmt.Errorf("rebuilding %s: %w", p.view.Name, err)
	}
	if err := p.session.Query(`UPDATE projection_rebuilds SET status = 'done', finished_at = ?, aggregates = ?, events = ? WHERE projection_name = ?`,
		time.Now().UTC(), aggregates.Load(), events.Load(), p.view.Name).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("recording the rebuild's end: %w", err)
	}
	span.SetAttributes(attribute.Int64("orderstream.rebuild.aggregates", aggregates.Load()), attribute.Int64("orderstream.rebuild.events", events.Load()))
	p.logger.Info().Int64("aggregates", aggregates.Load()).Int64("events", events.Load()).Dur("took", time.Since(start)).Msg("rebuild done; consuming again")
	return nil
}

// rebuildAggregate folds all of an aggregate's events from the start and
// writes its rows and checkpoint as if nothing had been written before.
func (p *Projector[S]) rebuildAggregate(ctx context.Context, id gocql.UUID) (int64, error) {
	var events []eventstore.Event
	if err := p.store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		return 0, err
	}
	// A parked aggregate is rebuilt up to its poison event and stays
	// parked, without a second dead letter; the dlq-service decides what
	// happens to it.
	if err := p.apply(ctx, id, checkpoint[S]{}, events, p.isParked(ctx, id)); err != nil {
		return 0, err
	}
	return int64(len(events)), nil
}
