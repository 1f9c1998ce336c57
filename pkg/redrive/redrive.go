// Package redrive is the one parking and redrive component every consumer
// of events shares (the relay, each projector): it dead-letters an event
// that can never be processed as it is and parks its aggregate behind it,
// keeps the component's parked set (deadletter.Set) in step with
// parked_aggregates, and serves the dlq-service's retry requests
// (deadletter.Retrier) as a worker of its own under the supervisor.
//
// What a re-drive does is the component's business (the relay publishes,
// a projector applies): it hands its deadletter.Redrive to New and calls
// Unpark when the re-drive settled the dead letter and freed the aggregate.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// ErrPoison marks an event that can never be processed as it is (its
// payload cannot be read, the view cannot fold it, the broker refuses its
// record): retrying is pointless, so it is dead-lettered and its aggregate
// parked. It is the one place that decides dead letter over retry.
var ErrPoison = errors.New("event cannot be processed as it is")

// Store is the part of the dead-letter store parking uses;
// *deadletter.Store and its in-memory twin have it.
type Store interface {
	// Park dead-letters e for component and parks its aggregate; it
	// returns the dead letter's id.
	Park(ctx context.Context, component string, e eventstore.Event, cause error) (gocql.UUID, error)
	// Parked reads component's parked aggregates.
	Parked(ctx context.Context, component string) (map[gocql.UUID]bool, error)
	// Raw records input that cannot be tied to an aggregate.
	Raw(ctx context.Context, component string, raw any, cause error) error
}

// DeadLetters is the whole dead-letter store a component works with: its
// parking (Store), the retry requests the redrive worker serves
// (deadletter.RequestStore) and the settling of a re-drive (Settle, called
// by the component's deadletter.Redrive). *deadletter.Store and its
// in-memory twin deadletter.Memory have it.
type DeadLetters interface {
	Store
	deadletter.RequestStore
	Settle(ctx context.Context, e deadletter.Entry, o deadletter.Outcome) (deadletter.Result, error)
}

// Poller carries out a component's pending retry requests
// (*deadletter.Retrier): PollPending returns how many it found pending,
// taken by a replica or not, and an error only when ctx ended.
type Poller interface {
	PollPending(ctx context.Context) (int, error)
}

// Metrics are the component's own series: each component keeps its metric
// names (orderstream_relay_parked_aggregates, orderstream_projector_…), so
// it builds and registers them and hands them here. Nil ones are not
// updated.
type Metrics struct {
	Parked       prometheus.Gauge   // size of the parked set
	DeadLettered prometheus.Counter // events and raw inputs dead-lettered
}

// Options are the optional parts of a component's parking.
type Options struct {
	// Metrics are updated on every change.
	Metrics Metrics
	// RawComponent names the component of Raw's dead letters (default:
	// the component).
	RawComponent string
	// ReloadEvery is how often Run and ReloadIfStale re-read the parked
	// set (the dlq-service unparks aggregates); 0 leaves reloading to the
	// component (the relay reloads before every full scan).
	ReloadEvery time.Duration
	// ReloadMaxEvery is how far Run's re-reads back off (doubling from
	// ReloadEvery, jittered) while the set is empty and they find it
	// still empty; 0 (or below ReloadEvery) keeps them at ReloadEvery.
	// ReloadIfStale, on the component's hot path, keeps ReloadEvery: while
	// records flow the set is never older than that.
	ReloadMaxEvery time.Duration
	// Paused, when it returns true, makes Run skip a round (a projector's
	// rebuild).
	Paused func() bool
	// Unparked is called by a reload with the aggregates that left the
	// parked set since the previous one (unparked by another replica).
	Unparked func(ids []gocql.UUID)
	// EachRound runs in every round of Run, after the reload and before the
	// retry requests (a projector catching up what another member
	// unparked).
	EachRound func(ctx context.Context)
	// Poller replaces the retrier built on the store (tests).
	Poller Poller
}

// Parking is one component's parked set and retry requests.
type Parking struct {
	component string
	store     Store
	poller    Poller
	every     time.Duration // retry.Every
	maxEvery  time.Duration // retry.MaxEvery, at least every
	opts      Options
	logger    zerolog.Logger

	set        deadletter.Set
	reloadedAt atomic.Int64 // unix nanos of the last successful reload

	sleep func(ctx context.Context, d time.Duration) bool // Run's pause (backoff.Sleep; tests record it)
}

// New builds the parking of component: dead letters go to store, and retry
// requests, read from it every retry.Every (backing off to retry.MaxEvery
// while there are none), are carried out by redrive. The retrier's counter
// orderstream_dlq_redrives_total is registered with reg.
func New(component string, store DeadLetters, retry deadletter.RetryConfig, redrive deadletter.Redrive, logger zerolog.Logger, reg prometheus.Registerer, opts Options) (*Parking, error) {
	if component == "" {
		return nil, errors.New("redrive: the component needs a name")
	}
	if err := retry.Validate(); err != nil {
		return nil, fmt.Errorf("redrive: %w", err)
	}
	if opts.RawComponent == "" {
		opts.RawComponent = component
	}
	p := &Parking{component: component, store: store, every: retry.Every, maxEvery: max(retry.Every, retry.MaxEvery), opts: opts, logger: logger.With().Str("component", component).Logger()}
	p.poller = opts.Poller
	if p.poller == nil {
		r, err := deadletter.NewRetrierOn(retry, store, component, redrive, logger, reg)
		if err != nil {
			return nil, fmt.Errorf("redrive: %w", err)
		}
		p.poller = r
	}
	return p, nil
}

// Component is the name the parking dead-letters and parks under.
func (p *Parking) Component() string { return p.component }

// Has reports whether id is parked; it takes no lock (hot paths).
func (p *Parking) Has(id gocql.UUID) bool { return p.set.Has(id) }

// Len is the number of parked aggregates.
func (p *Parking) Len() int { return p.set.Len() }

// Park dead-letters e for the component and parks its aggregate at once, so
// that nothing read meanwhile (a scan, the next record) passes it before
// the next reload. reason, when not empty, is logged with it.
func (p *Parking) Park(ctx context.Context, e eventstore.Event, reason string, cause error) (gocql.UUID, error) {
	id, err := p.store.Park(ctx, p.component, e, cause)
	if err != nil {
		return id, err
	}
	p.setParked(p.set.Add(e.AggregateID))
	if p.opts.Metrics.DeadLettered != nil {
		p.opts.Metrics.DeadLettered.Inc()
	}
	trace.SpanFromContext(ctx).AddEvent("dead-lettered", trace.WithAttributes(attribute.String("orderstream.dlq.id", id.String())))
	l := logging.ForEvent(ctx, p.logger, e)
	ev := l.Error().Err(cause).Str("event_type", e.Type).Str("dlq_id", id.String())
	if reason != "" {
		ev = ev.Str("reason", reason)
	}
	ev.Msg("event dead-lettered; its aggregate is parked")
	return id, nil
}

// Raw records input that cannot be tied to an aggregate; it parks nothing.
func (p *Parking) Raw(ctx context.Context, raw any, cause error) error {
	if err := p.store.Raw(ctx, p.opts.RawComponent, raw, cause); err != nil {
		return err
	}
	if p.opts.Metrics.DeadLettered != nil {
		p.opts.Metrics.DeadLettered.Inc()
	}
	return nil
}

// Unpark removes id from the parked set, once the component's re-drive
// settled its dead letter (parked_aggregates is updated by Settle).
func (p *Parking) Unpark(id gocql.UUID) { p.setParked(p.set.Remove(id)) }

// Reload re-reads the parked set. A read that overlapped a change of the
// set is dropped (deadletter.Set.Reload); the next one catches up.
func (p *Parking) Reload(ctx context.Context) error {
	_, err := p.reload(ctx)
	return err
}

// reload is Reload, and says whether the set changed meanwhile (by the
// read, or by a change the read overlapped).
func (p *Parking) reload(ctx context.Context) (changed bool, err error) {
	before := p.set.Len()
	removed, err := p.set.Reload(ctx, func(ctx context.Context) (map[gocql.UUID]bool, error) {
		return p.store.Parked(ctx, p.component)
	})
	if err != nil {
		return false, err
	}
	p.reloadedAt.Store(time.Now().UnixNano())
	after := p.set.Len()
	p.setParked(after)
	if len(removed) > 0 && p.opts.Unparked != nil {
		p.opts.Unparked(removed)
	}
	return len(removed) > 0 || after != before, nil
}

// ReloadIfStale reloads the parked set when the last reload is older than
// Options.ReloadEvery. A failed read keeps the previous set and is logged.
func (p *Parking) ReloadIfStale(ctx context.Context) {
	if p.opts.ReloadEvery <= 0 || time.Since(time.Unix(0, p.reloadedAt.Load())) <= p.opts.ReloadEvery {
		return
	}
	if err := p.Reload(ctx); err != nil && ctx.Err() == nil {
		p.logger.Warn().Err(err).Msg("reading the parked aggregates")
	}
}

// Run is the redrive worker: in each round (unless paused) it reloads a
// stale parked set, runs EachRound and carries out the pending retry
// requests, until ctx ends. It returns nil then: failures of one round are
// logged and left for the next.
//
// An idle component should cost nothing, so both reads back off while they
// find nothing (pkg/backoff, jittered): the pause between rounds is
// retry.Every after a round that found a retry request, and doubles up to
// retry.MaxEvery while rounds find none (so a request waits at most
// retry.MaxEvery); the parked set is re-read once older than ReloadEvery
// while it holds aggregates or a re-read finds it changed, and once older
// than a threshold doubling up to ReloadMaxEvery while it stays empty.
// Nothing that matters waits on the latter: with nothing parked there is
// nothing to unpark or catch up, and the hot path (ReloadIfStale) re-reads
// every ReloadEvery while records flow.
func (p *Parking) Run(ctx context.Context) error {
	polls := backoff.Policy{Initial: p.every, Max: p.maxEvery}.Start()
	reloads := backoff.Policy{Initial: p.opts.ReloadEvery, Max: max(p.opts.ReloadEvery, p.opts.ReloadMaxEvery)}.Start()
	pause, reloadAfter := p.every, p.opts.ReloadEvery
	sleep := p.sleep
	if sleep == nil {
		sleep = backoff.Sleep
	}
	for {
		if p.opts.Paused == nil || !p.opts.Paused() {
			reloadAfter = p.reloadIdle(ctx, reloadAfter, reloads)
			if p.opts.EachRound != nil {
				p.opts.EachRound(ctx)
			}
			pending, err := p.poller.PollPending(ctx)
			if err != nil {
				return nil // ctx ended
			}
			pause = p.nextPause(pause, pending, polls)
		}
		if !sleep(ctx, pause) {
			return nil
		}
	}
}

// nextPause is the pause after a round that found pending retry requests
// (prev the pause before it): retry.Every after a find, growing towards
// retry.MaxEvery while rounds find none.
func (p *Parking) nextPause(prev time.Duration, pending int, polls *backoff.Backoff) time.Duration {
	if p.maxEvery <= p.every {
		return p.every // no back-off
	}
	if pending > 0 {
		polls.Reset()
		if prev > p.every {
			p.logger.Debug().Int("pending", pending).Dur("every", p.every).Msg("retry requests found: reading them at the fast rate again")
		}
		return p.every
	}
	next := max(polls.Next(), p.every) // the jitter never makes it faster than after a find
	if prev < p.maxEvery/2 && next >= p.maxEvery/2 {
		p.logger.Debug().Dur("max_every", p.maxEvery).Msg("no retry requests: reading them at the slow rate")
	}
	return next
}

// reloadIdle is Run's re-read of the parked set: once the last re-read
// (Run's or the hot path's) is older than after, it re-reads it and
// returns the age that calls for the next: ReloadEvery while the set holds
// aggregates or the re-read changed it, growing towards ReloadMaxEvery
// while it stays empty. A failed read keeps the set and the threshold, and
// is logged.
func (p *Parking) reloadIdle(ctx context.Context, after time.Duration, reloads *backoff.Backoff) time.Duration {
	if p.opts.ReloadEvery <= 0 || time.Since(time.Unix(0, p.reloadedAt.Load())) <= after {
		return after
	}
	changed, err := p.reload(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.logger.Warn().Err(err).Msg("reading the parked aggregates")
		}
		return after
	}
	if changed || p.set.Len() > 0 {
		reloads.Reset()
		return p.opts.ReloadEvery
	}
	return max(reloads.Next(), p.opts.ReloadEvery)
}

// Worker is Run as a supervised worker called name.
func (p *Parking) Worker(name string) supervise.Worker {
	return supervise.Worker{Name: name, Run: p.Run}
}

func (p *Parking) setParked(n int) {
	if p.opts.Metrics.Parked != nil {
		p.opts.Metrics.Parked.Set(float64(n))
	}
}
