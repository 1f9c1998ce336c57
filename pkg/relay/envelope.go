package relay

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

// DefaultTopicPrefix starts the name of every topic: orderstream.orders.v1.
const DefaultTopicPrefix = "orderstream"

// TopicOf is the topic of an aggregate type under a prefix:
// <prefix>.orders.v1 for "order", <prefix>.customers.v1 for "customer".
func TopicOf(prefix, aggregateType string) string { return prefix + "." + aggregateType + "s.v1" }

// Topic is the topic of an aggregate type under the default prefix.
func Topic(aggregateType string) string { return TopicOf(DefaultTopicPrefix, aggregateType) }

// Record headers; consumers drop duplicates by (key, sequence).
const (
	HeaderEventType     = "event_type"
	HeaderEventID       = "event_id"
	HeaderSequence      = "sequence"
	HeaderCorrelationID = "correlation_id"
	HeaderCausationID   = "causation_id"
	HeaderTraceparent   = "traceparent"
	HeaderTracestate    = "tracestate"
)

// Message builds the record of one stored event (already upcast to the
// current layout): key = aggregate id, value = the envelope as protojson.
// An event whose payload cannot be read is an error: the caller
// dead-letters it.
func Message(e eventstore.Event) (*sarama.ProducerMessage, error) {
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
	if tp := e.TraceContext["traceparent"]; tp != "" {
		env.TraceContext = &eventv1.TraceContext{Traceparent: tp, Tracestate: e.TraceContext["tracestate"]}
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
		Topic:     Topic(e.AggregateType),
		Key:       sarama.StringEncoder(e.AggregateID.String()),
		Value:     sarama.ByteEncoder(value),
		Headers:   headers,
		Timestamp: e.OccurredAt,
	}, nil
}
