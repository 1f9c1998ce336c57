// Package record is the broker record contract, for the relay that writes
// records and the projectors (and tests, benchmarks, the accounting check)
// that read them: topic names and their prefix, the envelope and its
// encoding, the headers, the partitioning, the producer and consumer
// settings, and the creation of topics. It is the one owner of that wire
// format (STYLE.md, "Seams"): nothing else builds or parses a record.
//
// A record is keyed by the aggregate id (so one aggregate's records share
// a partition and keep their order), carries the orderstream.event.v1
// Envelope as protojson in its value, and repeats in headers what a
// consumer needs before reading the value: the sequence (to place and
// de-duplicate the record), the event's ids and the W3C trace context.
package record

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
)

// DefaultTopicPrefix starts the name of every topic: orderstream.orders.v1.
const DefaultTopicPrefix = "orderstream"

// TopicOf is the topic of an aggregate type under a prefix:
// <prefix>.orders.v1 for "order", <prefix>.customers.v1 for "customer".
func TopicOf(prefix, aggregateType string) string { return prefix + "." + aggregateType + "s.v1" }

// TopicsOf are the topics of every aggregate type (order, customer) under a
// prefix.
func TopicsOf(prefix string) []string {
	return []string{TopicOf(prefix, order.AggregateType), TopicOf(prefix, customer.AggregateType)}
}

// Topics is the topic naming that the writer and the readers of records
// must agree on. The relay's and the projectors' configurations embed it
// (`mapstructure:",squash"`, so the key stays relay.topic_prefix and
// projector.topic_prefix), so that the prefix, its default and its check
// are defined here only.
type Topics struct {
	TopicPrefix string `mapstructure:"topic_prefix" help:"topics are <topic_prefix>.orders.v1 and <topic_prefix>.customers.v1; the relay and the projectors must use the same prefix"`
}

// DefaultTopics names the topics under DefaultTopicPrefix.
func DefaultTopics() Topics { return Topics{TopicPrefix: DefaultTopicPrefix} }

// Validate checks the prefix.
func (t Topics) Validate() error {
	if t.TopicPrefix == "" {
		return config.Errorf("topic_prefix", "must not be empty")
	}
	return nil
}

// Topic is the topic of an aggregate type.
func (t Topics) Topic(aggregateType string) string { return TopicOf(t.TopicPrefix, aggregateType) }

// Record headers. The relay writes them on every record; consumers place
// and de-duplicate a record by (key, sequence) before reading its value.
const (
	HeaderEventType     = "event_type"
	HeaderEventID       = "event_id"
	HeaderSequence      = "sequence"
	HeaderCorrelationID = "correlation_id"
	HeaderCausationID   = "causation_id"
	// HeaderTraceparent and HeaderTracestate carry the W3C trace context
	// of the relay's publish span (the envelope keeps the command's).
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Span attributes of orderstream's own that name a record's event, on the
// spans of its writer and of its readers alike (the messaging ones are
// OpenTelemetry's semantic conventions).
const (
	AttrAggregateID = attribute.Key("orderstream.aggregate_id")
	AttrSequence    = attribute.Key("orderstream.sequence")
	AttrEventType   = attribute.Key("orderstream.event_type")
	AttrEventID     = attribute.Key("orderstream.event_id")
)
