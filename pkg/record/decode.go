package record

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	eventv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/event/v1"
)

// Decoded is one consumed record as its reader sees it: whose event it is,
// at which sequence, and the event itself when the envelope could be read.
type Decoded struct {
	AggregateID gocql.UUID
	Sequence    int64
	// Event is the envelope's event. When Err is set the reader reads the
	// event from event_store instead: Event is then zero (the envelope
	// cannot be read) or names another event than the key and the sequence
	// header do.
	Event eventstore.Event
	Err   error
	// Topic, Partition and Offset locate the record (for progress); zero
	// in tests that feed records directly.
	Topic     string
	Partition int32
	Offset    int64
	// Headers are the ids and the W3C trace context the record's headers
	// carry (the relay's publish span; the envelope keeps the command's), so
	// that a reader continues the trace and its log lines name the event
	// even when the envelope cannot be read.
	Headers Headers
}

// Headers are the headers of a record that identify its event.
type Headers struct {
	EventID, CorrelationID, CausationID string
	TraceContext                        map[string]string // traceparent, tracestate
}

// Decode reads a record published by the relay. The key and the sequence
// header are enough to place it; an envelope that cannot be read is
// reported in Decoded.Err, not as an error, because event_store still has
// the event. The error return means the record cannot even be placed.
//
// Every event Decode accepts encodes (Encode) to a record that decodes to
// the same event: its fuzzer holds it to that.
func Decode(msg *sarama.ConsumerMessage) (Decoded, error) {
	rec := Decoded{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset}
	var err error
	if rec.AggregateID, rec.Sequence, err = Locate(msg); err != nil {
		return rec, err
	}
	for _, h := range msg.Headers {
		if h == nil {
			continue
		}
		switch string(h.Key) {
		case HeaderEventID:
			rec.Headers.EventID = string(h.Value)
		case HeaderCorrelationID:
			rec.Headers.CorrelationID = string(h.Value)
		case HeaderCausationID:
			rec.Headers.CausationID = string(h.Value)
		case HeaderTraceparent, HeaderTracestate:
			if rec.Headers.TraceContext == nil {
				rec.Headers.TraceContext = map[string]string{}
			}
			rec.Headers.TraceContext[string(h.Key)] = string(h.Value)
		}
	}
	rec.Event, rec.Err = envelopeEvent(msg.Value)
	if rec.Err == nil && (rec.Event.AggregateID != rec.AggregateID || rec.Event.Sequence != rec.Sequence) {
		rec.Err = fmt.Errorf("envelope is %s/%d but the record is %s/%d", rec.Event.AggregateID, rec.Event.Sequence, rec.AggregateID, rec.Sequence)
	}
	return rec, nil
}

// Locate places a record without reading its value: the aggregate its key
// names (in the canonical form Encode writes) and the sequence its header
// carries (the last one, should there
// be several). An error means the record belongs to no aggregate.
func Locate(msg *sarama.ConsumerMessage) (gocql.UUID, int64, error) {
	id, err := gocql.ParseUUID(string(msg.Key))
	if err != nil {
		return id, 0, fmt.Errorf("record key %q is not an aggregate id: %w", msg.Key, err)
	}
	// Only the form Encode writes: another spelling of the same id would
	// hash to another partition, out of order with the aggregate's records.
	if id.String() != string(msg.Key) {
		return id, 0, fmt.Errorf("record key %q is not an aggregate id as the relay writes it (%s)", msg.Key, id)
	}
	var seq int64
	for _, h := range msg.Headers {
		if h == nil || string(h.Key) != HeaderSequence {
			continue
		}
		if seq, err = strconv.ParseInt(string(h.Value), 10, 64); err != nil || seq < 1 {
			return id, 0, fmt.Errorf("record of %s has a bad sequence header %q", id, h.Value)
		}
	}
	if seq == 0 {
		return id, 0, fmt.Errorf("record of %s has no sequence header", id)
	}
	return id, seq, nil
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
	// The payload must be the contract of the event type it claims to be,
	// or the event could not be encoded again (nor folded by a view).
	want, err := eventcodec.Payload(env.GetAggregateType(), env.GetEventType(), data)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("envelope payload: %w", err)
	}
	if got, need := proto.MessageName(payload), proto.MessageName(want); got != need {
		return eventstore.Event{}, fmt.Errorf("envelope payload is a %s, but a %s event carries a %s", got, env.GetEventType(), need)
	}
	e := eventstore.Event{
		AggregateID: id, AggregateType: env.GetAggregateType(), Sequence: env.GetSequenceNumber(),
		EventID: eventID, Type: env.GetEventType(), Version: env.GetEventVersion(), Data: data,
		CausationID: env.GetCausationId(), CorrelationID: env.GetCorrelationId(), OccurredAt: env.GetOccurredAt().AsTime(),
	}
	// A tracestate means nothing without its traceparent (W3C), and Encode
	// writes neither without a traceparent.
	if tc := env.GetTraceContext(); tc.GetTraceparent() != "" {
		e.TraceContext = map[string]string{HeaderTraceparent: tc.GetTraceparent()}
		if tc.GetTracestate() != "" {
			e.TraceContext[HeaderTracestate] = tc.GetTracestate()
		}
	}
	return e, nil
}
