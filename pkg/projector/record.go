package projector

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderstream/orderstream/pkg/eventstore"
	eventv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/event/v1"
	"github.com/orderstream/orderstream/pkg/relay"
)

// Record is one broker record as the projector sees it: whose event it is,
// at which sequence, and the event itself when the envelope could be read.
type Record struct {
	AggregateID gocql.UUID
	Sequence    int64
	// Event is the envelope's event; zero when Err is set, in which case the
	// projector reads the event from event_store instead.
	Event eventstore.Event
	Err   error
	// Topic, Partition and Offset locate the record (for progress); zero
	// in tests that feed records directly.
	Topic     string
	Partition int32
	Offset    int64
	// Headers are the ids and the W3C trace context the record's headers
	// carry (the relay's publish span; the envelope keeps the command's), so
	// that the apply continues the trace and its log lines name the event
	// even when the envelope cannot be read.
	Headers RecordHeaders
}

// RecordHeaders are the headers of a relay record that identify its event.
type RecordHeaders struct {
	EventID, CorrelationID, CausationID string
	TraceContext                        map[string]string // traceparent, tracestate
}

// Decode reads a record published by the relay. The key and the sequence
// header are enough to place it; an envelope that cannot be read is
// reported in Record.Err, not as an error, because event_store still has
// the event. The error return means the record cannot even be placed.
func Decode(msg *sarama.ConsumerMessage) (Record, error) {
	rec := Record{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset}
	id, err := gocql.ParseUUID(string(msg.Key))
	if err != nil {
		return rec, fmt.Errorf("record key %q is not an aggregate id: %w", msg.Key, err)
	}
	rec.AggregateID = id
	for _, h := range msg.Headers {
		switch string(h.Key) {
		case relay.HeaderSequence:
			if rec.Sequence, err = strconv.ParseInt(string(h.Value), 10, 64); err != nil || rec.Sequence < 1 {
				return rec, fmt.Errorf("record of %s has a bad sequence header %q", id, h.Value)
			}
		case relay.HeaderEventID:
			rec.Headers.EventID = string(h.Value)
		case relay.HeaderCorrelationID:
			rec.Headers.CorrelationID = string(h.Value)
		case relay.HeaderCausationID:
			rec.Headers.CausationID = string(h.Value)
		case relay.HeaderTraceparent, relay.HeaderTracestate:
			if rec.Headers.TraceContext == nil {
				rec.Headers.TraceContext = map[string]string{}
			}
			rec.Headers.TraceContext[string(h.Key)] = string(h.Value)
		}
	}
	if rec.Sequence == 0 {
		return rec, fmt.Errorf("record of %s has no sequence header", id)
	}
	rec.Event, rec.Err = envelopeEvent(msg.Value)
	if rec.Err == nil && (rec.Event.AggregateID != id || rec.Event.Sequence != rec.Sequence) {
		rec.Err = fmt.Errorf("envelope is %s/%d but the record is %s/%d", rec.Event.AggregateID, rec.Event.Sequence, id, rec.Sequence)
	}
	return rec, nil
}

// envelopeEvent turns the relay's envelope back into the stored event: the
// payload becomes protojson again, as event_store holds it.
func envelopeEvent(value []byte) (eventstore.Event, error) {
	var env eventv1.Envelope
	if err := protojson.Unmarshal(value, &env); err != nil {
		return eventstore.Event{}, fmt.Errorf("reading envelope: %w", err)
	}
	id, err := gocql.ParseUUID(env.GetAggregateId())
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope aggregate id: %w", err)
	}
	eventID, err := gocql.ParseUUID(env.GetEventId())
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope event id: %w", err)
	}
	if env.GetPayload() == nil {
		return eventstore.Event{}, fmt.Errorf("envelope of %s %d has no payload", id, env.GetSequenceNumber())
	}
	payload, err := env.GetPayload().UnmarshalNew()
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope payload: %w", err)
	}
	data, err := protojson.Marshal(payload)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope payload: %w", err)
	}
	e := eventstore.Event{
		AggregateID: id, AggregateType: env.GetAggregateType(), Sequence: env.GetSequenceNumber(),
		EventID: eventID, Type: env.GetEventType(), Version: env.GetEventVersion(), Data: data,
		CausationID: env.GetCausationId(), CorrelationID: env.GetCorrelationId(), OccurredAt: env.GetOccurredAt().AsTime(),
	}
	if tc := env.GetTraceContext(); tc != nil {
		e.TraceContext = map[string]string{"traceparent": tc.GetTraceparent()}
		if tc.GetTracestate() != "" {
			e.TraceContext["tracestate"] = tc.GetTracestate()
		}
	}
	return e, nil
}
