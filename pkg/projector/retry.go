package projector

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/gocql/gocql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// redriveState is what a projector keeps to carry out the dlq-service's
// retry requests (deadletter.Retrier): a lock per aggregate (by hash), so
// that a re-drive and Handle never work on one aggregate at once, and the
// parked aggregates whose records this member skipped.
//
// Records of a parked aggregate are skipped, and their offsets committed:
// whoever unparks the aggregate must apply what they carried. The member
// that carries out the request re-drives the aggregate through its head
// and unparks it while holding its lock, so records arriving meanwhile
// wait and are applied after. With several members, the one that consumes
// the aggregate's partition may not be the one that carried out the
// request: when a reload of its parked set shows an aggregate it skipped
// records of was unparked elsewhere, it catches the aggregate up from its
// checkpoint through its head (catchUp).
type redriveState struct {
	locks [64]sync.Mutex

	mu      sync.Mutex
	skipped map[gocql.UUID]bool // parked, with records skipped here
	catchUp map[gocql.UUID]bool // unparked elsewhere, to catch up here
}

func (p *Projector[S]) lockAggregate(id gocql.UUID) (unlock func()) {
	h := fnv.New32a()
	_, _ = h.Write(id[:])
	l := &p.redrives.locks[h.Sum32()%uint32(len(p.redrives.locks))]
	l.Lock()
	return l.Unlock
}

func (p *Projector[S]) noteSkipped(id gocql.UUID) {
	p.redrives.mu.Lock()
	defer p.redrives.mu.Unlock()
	if p.redrives.skipped == nil {
		p.redrives.skipped = map[gocql.UUID]bool{}
	}
	p.redrives.skipped[id] = true
}

// refreshParked reloads the parked set now (unparkedElsewhere notes the
// aggregates to catch up). A failed read keeps the previous set.
func (p *Projector[S]) refreshParked(ctx context.Context) {
	if err := p.parking.Reload(ctx); err != nil {
		p.logger.Warn().Err(err).Msg("reading the parked aggregates")
	}
}

// unparkedElsewhere is told by a reload of the parked set which
// aggregates left it: unparked by another member, whose checkpoint is
// newer than what this member cached; those whose records this member
// skipped are to be caught up (catchUpUnparked, each round of the redrive
// worker).
func (p *Projector[S]) unparkedElsewhere(removed []gocql.UUID) {
	p.redrives.mu.Lock()
	defer p.redrives.mu.Unlock()
	for _, id := range removed {
		p.remember(id, checkpoint[S]{}, false)
		if p.redrives.skipped[id] {
			delete(p.redrives.skipped, id)
			if p.redrives.catchUp == nil {
				p.redrives.catchUp = map[gocql.UUID]bool{}
			}
			p.redrives.catchUp[id] = true
		}
	}
}

// RedriveWorker is the projector's redrive worker (pkg/redrive): every
// Retry.Every, unless a rebuild runs, it reloads a stale parked set,
// catches up what was unparked elsewhere and carries out the retry
// requests of this projector.
func (p *Projector[S]) RedriveWorker() supervise.Worker { return p.parking.Worker("redrive") }

// catchUpUnparked applies, for each aggregate unparked elsewhere whose
// records this member skipped, the events from its checkpoint through its
// head. One that fails for a transient reason is tried again next time.
func (p *Projector[S]) catchUpUnparked(ctx context.Context) {
	p.redrives.mu.Lock()
	ids := make([]gocql.UUID, 0, len(p.redrives.catchUp))
	for id := range p.redrives.catchUp {
		ids = append(ids, id)
	}
	p.redrives.mu.Unlock()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := p.catchUp(ctx, id); err != nil {
			p.logger.Warn().Err(err).Str("aggregate_id", id.String()).Msg("catching up an aggregate unparked by another member; tried again")
			continue
		}
		p.redrives.mu.Lock()
		delete(p.redrives.catchUp, id)
		p.redrives.mu.Unlock()
	}
}

func (p *Projector[S]) catchUp(ctx context.Context, id gocql.UUID) error {
	defer p.lockAggregate(id)()
	if p.parking.Has(id) {
		return nil // parked again: its next re-drive covers it
	}
	p.remember(id, checkpoint[S]{}, false) // written by the other member
	cp, err := p.loadCheckpoint(ctx, id)
	if err != nil {
		return err
	}
	head, events, err := p.eventsAfter(ctx, id, cp.seq)
	if err != nil || head <= cp.seq {
		return err
	}
	return p.apply(ctx, id, cp, events, false)
}

// eventsAfter reads the aggregate's head and its events after seq.
func (p *Projector[S]) eventsAfter(ctx context.Context, id gocql.UUID, seq int64) (int64, []eventstore.Event, error) {
	head, _, err := p.store.Version(ctx, id)
	if err != nil || head <= seq {
		return head, nil, err
	}
	var events []eventstore.Event
	if err := p.store.Events(ctx, id, seq, head, func(e eventstore.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		return head, nil, err
	}
	if int64(len(events)) != head-seq {
		return head, nil, fmt.Errorf("event_store has %d of the events %d..%d of %s", len(events), seq+1, head, id)
	}
	return head, events, nil
}

// redrive carries out a retry request: holding the aggregate, it applies
// the events from the projector's checkpoint through the aggregate's head,
// in order (an event that fails again is dead-lettered as any other, which
// counts one more failure of the same dead letter), and settles the dead
// letter (deadletter.Settle), unparking the aggregate when every event
// went through. A skip first advances the checkpoint past the dead
// letter's event when the projector stands right before it: the rows are
// rewritten with its sequence as their version, without its effect.
func (p *Projector[S]) redrive(ctx context.Context, req deadletter.Request, e deadletter.Entry) (res deadletter.Result, err error) {
	ctx, span := p.tracer.Start(ctx, "projector redrive", trace.WithAttributes(
		record.AttrAggregateID.String(e.AggregateID.String()), record.AttrSequence.Int64(e.Sequence), record.AttrEventID.String(e.EventID.String()), record.AttrEventType.String(e.EventType),
		attrProjection.String(p.view.Name), attribute.String("orderstream.dlq.id", e.ID.String()), attribute.String("orderstream.dlq.action", string(req.Action)),
		attribute.String("orderstream.dlq.requested_by", req.RequestedBy)))
	defer func() {
		span.SetAttributes(attribute.String("orderstream.dlq.status", res.Status), attribute.Int64("orderstream.dlq.applied", res.Applied))
		endSpan(span, err)
	}()
	id := e.AggregateID
	defer p.lockAggregate(id)()
	p.remember(id, checkpoint[S]{}, false) // read the checkpoint as stored
	cp, err := p.loadCheckpoint(ctx, id)
	if errors.Is(err, errPermanent) {
		return p.dlq.Settle(ctx, e, deadletter.Outcome{Progress: min(cp.seq, e.Sequence-1), Err: err})
	}
	if err != nil {
		return deadletter.Result{}, err
	}
	if req.Action == deadletter.ActionSkip && cp.seq == e.Sequence-1 {
		if err := p.write(ctx, id, cp, cp.state, e.Sequence); err != nil {
			return deadletter.Result{}, err
		}
		cp = checkpoint[S]{seq: e.Sequence, state: cp.state, existed: true}
		p.remember(id, cp, true)
		p.m.skipped.WithLabelValues("dlq_skip").Inc()
		p.logger.Warn().Str(logging.FieldAggregateID, id.String()).Int64(logging.FieldSequence, e.Sequence).Str(logging.FieldEventID, e.EventID.String()).
			Str(logging.FieldTraceID, span.SpanContext().TraceID().String()).Str("dlq_id", e.ID.String()).Str("event_type", e.EventType).Str("requested_by", req.RequestedBy).
			Msg("event skipped at the dlq-service's request: its sequence is applied without its effect")
	}
	start := cp.seq
	head, events, err := p.eventsAfter(ctx, id, cp.seq)
	if err != nil {
		return deadletter.Result{}, err
	}
	var applyErr error
	if len(events) > 0 {
		applyErr = p.apply(ctx, id, cp, events, false)
	}
	progress := cp.seq
	if now, ok := p.cached(id); ok {
		progress = now.seq
	}
	res, err = p.dlq.Settle(ctx, e, deadletter.Outcome{
		Progress: progress, Head: head, Applied: progress - start, Err: applyErr,
		// apply dead-letters a poison event and returns nil: it stopped
		// short of the head without an error.
		Parked: applyErr == nil && progress < head,
	})
	if err != nil {
		return res, err
	}
	if res.Unparked {
		p.parking.Unpark(id)
		p.redrives.mu.Lock()
		delete(p.redrives.skipped, id)
		delete(p.redrives.catchUp, id)
		p.redrives.mu.Unlock()
	}
	return res, nil
}
