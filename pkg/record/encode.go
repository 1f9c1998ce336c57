package record

import (
	"fmt"
	"strconv"

	"github.com/IBM/sarama"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	eventv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/event/v1"
)

// Encode builds the record of one stored event (already upcast to the
// current layout) on its aggregate type's topic under prefix: key = the
// aggregate id, value = the envelope as protojson, and the headers. An
// event whose payload cannot be read is an error: the caller dead-letters
// it.
func Encode(e eventstore.Event, prefix string) (*sarama.ProducerMessage, error) {
	payload, err := eventcodec.Payload(e.AggregateType, e.Type, e.Data)
	if err != nil {
		return nil, err
	}
	anyPayload, err := anypb.New(payload)
	if err != nil {
		return nil, fmt.Errorf("wrapping %s: %w", e.Type, err)
	}
	env := &eventv1.Envelope{
		EventId:        e.EventID.String(),
		AggregateId:    e.AggregateID.String(),
		AggregateType:  e.AggregateType,
		SequenceNumber: e.Sequence,
		EventType:      e.Type,
		EventVersion:   e.Version,
		OccurredAt:     timestamppb.New(e.OccurredAt),
		CorrelationId:  e.CorrelationID,
		CausationId:    e.CausationID,
		Payload:        anyPayload,
	}
	if tp := e.TraceContext[HeaderTraceparent]; tp != "" {
		env.TraceContext = &eventv1.TraceContext{Traceparent: tp, Tracestate: e.TraceContext[HeaderTracestate]}
	}
	value, err := protojson.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding envelope of %s %d: %w", e.AggregateID, e.Sequence, err)
	}
	headers := []sarama.RecordHeader{
		{Key: []byte(HeaderEventType), Value: []byte(e.Type)},
		{Key: []byte(HeaderEventID), Value: []byte(e.EventID.String())},
		{Key: []byte(HeaderSequence), Value: []byte(strconv.FormatInt(e.Sequence, 10))},
		{Key: []byte(HeaderCorrelationID), Value: []byte(e.CorrelationID)},
		{Key: []byte(HeaderCausationID), Value: []byte(e.CausationID)},
	}
	if env.TraceContext != nil {
		headers = append(headers, sarama.RecordHeader{Key: []byte(HeaderTraceparent), Value: []byte(env.TraceContext.Traceparent)})
		if env.TraceContext.Tracestate != "" {
			headers = append(headers, sarama.RecordHeader{Key: []byte(HeaderTracestate), Value: []byte(env.TraceContext.Tracestate)})
		}
	}
	return &sarama.ProducerMessage{
		Topic:     TopicOf(prefix, e.AggregateType),
		Key:       sarama.StringEncoder(e.AggregateID.String()),
		Value:     sarama.ByteEncoder(value),
		Headers:   headers,
		Timestamp: e.OccurredAt,
	}, nil
}

// SetHeader replaces (or adds, or with an empty value removes) a header of
// a record about to be sent.
func SetHeader(msg *sarama.ProducerMessage, key, value string) {
	out := msg.Headers[:0]
	for _, h := range msg.Headers {
		if string(h.Key) != key {
			out = append(out, h)
		}
	}
	if value != "" {
		out = append(out, sarama.RecordHeader{Key: []byte(key), Value: []byte(value)})
	}
	msg.Headers = out
}
