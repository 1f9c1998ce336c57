package relay

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/record"
)

type redriven struct {
	res deadletter.Result
	err error
}

// redrive re-drives a parked aggregate on its worker, the one goroutine
// that publishes it, so that no scan or notification publishes it
// meanwhile. The redrive worker (pkg/redrive) calls it; while the
// publisher is not running it waits for it.
func (r *Relay) redrive(ctx context.Context, req deadletter.Request, e deadletter.Entry) (deadletter.Result, error) {
	out := make(chan redriven, 1)
	job := pending{id: e.AggregateID, run: func() {
		res, err := r.redriveAggregate(ctx, req, e)
		out <- redriven{res, err}
	}}
	if err := r.enqueue(ctx, job); err != nil {
		return deadletter.Result{}, err
	}
	select {
	case o := <-out:
		return o.res, o.err
	case <-ctx.Done():
		return deadletter.Result{}, ctx.Err()
	}
}

// redriveAggregate publishes the aggregate from published_sequence+1
// through its current_sequence, in order, as a scan would, then settles
// the dead letter: deleted and the aggregate unparked when its event was
// published and nothing failed after it. A skip first records the dead
// letter's event as published without publishing it, when the relay
// stands right before it; consumers that fill the gap read it from
// event_store.
func (r *Relay) redriveAggregate(ctx context.Context, req deadletter.Request, e deadletter.Entry) (res deadletter.Result, err error) {
	// A span of its own: the re-drive is the operator's act, not the
	// command's; the publishes it makes are children of their events'
	// traces, as always (trace.go).
	ctx, span := r.tracer.Start(ctx, "relay redrive", trace.WithAttributes(
		record.AttrAggregateID.String(e.AggregateID.String()), record.AttrSequence.Int64(e.Sequence), record.AttrEventID.String(e.EventID.String()), record.AttrEventType.String(e.EventType),
		attribute.String("orderstream.dlq.id", e.ID.String()), attribute.String("orderstream.dlq.action", string(req.Action)), attribute.String("orderstream.dlq.requested_by", req.RequestedBy)))
	defer func() {
		span.SetAttributes(attribute.String("orderstream.dlq.status", res.Status), attribute.Int64("orderstream.dlq.applied", res.Applied))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "re-drive failed")
		}
		span.End()
	}()
	log := r.logger.With().Str(logging.FieldAggregateID, e.AggregateID.String()).Int64(logging.FieldSequence, e.Sequence).Str(logging.FieldEventID, e.EventID.String()).
		Str(logging.FieldTraceID, span.SpanContext().TraceID().String()).Str("dlq_id", e.ID.String()).Logger()
	p, err := r.refresh(ctx, pending{id: e.AggregateID})
	if err != nil {
		return deadletter.Result{}, fmt.Errorf("reading the marks of %s: %w", e.AggregateID, err)
	}
	if req.Action == deadletter.ActionSkip && p.published == e.Sequence-1 {
		if err := r.markPublished(ctx, p.id, e.Sequence); err != nil {
			return deadletter.Result{}, err
		}
		p.published = e.Sequence
		log.Warn().Str("event_type", e.EventType).Str("requested_by", req.RequestedBy).
			Msg("event skipped at the dlq-service's request: recorded as published, never published")
	}
	start := p.published
	var pubErr error
	if p.current > p.published {
		pubErr = r.publish(ctx, p)
	}
	after, err := r.refresh(ctx, pending{id: e.AggregateID})
	if err != nil {
		return deadletter.Result{}, fmt.Errorf("reading the marks of %s: %w", e.AggregateID, err)
	}
	res, err = r.dlq.Settle(ctx, e, deadletter.Outcome{
		Progress: after.published, Head: p.current, Applied: after.published - start, Err: pubErr, Parked: errors.Is(pubErr, errPoison),
	})
	if err != nil {
		return res, err
	}
	if res.Unparked {
		r.parking.Unpark(e.AggregateID)
		r.heldMu.Lock()
		delete(r.held, e.AggregateID)
		r.heldMu.Unlock()
	}
	return res, nil
}
