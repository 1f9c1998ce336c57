package relay

import (
	"errors"
	"strings"

	"github.com/IBM/sarama"
)

// Failure classes of a publish (DESIGN.md, "The relay"). This is the one
// place that decides retry versus dead letter for the producer's errors:
//   - a broker outage (no broker, no leader, timeouts, not enough replicas,
//     a closed connection, the breaker open) is waited out: the record is
//     retried, never dead-lettered;
//   - an error that retrying cannot fix for this one record (the record is
//     larger than the broker or the producer accepts, the broker rejects it
//     as invalid, the relay may not write its topic) dead-letters the event
//     and parks its aggregate. An event that cannot be decoded or encoded
//     never reaches the producer: record.Encode fails and publish dead-letters it
//     the same way (errPoison).
//
// Anything not recognised as unpublishable counts as an outage: a wrong
// guess that way only delays an aggregate, the other way it would
// dead-letter healthy events.

// Unpublishable reasons, also the reason label of
// orderstream_relay_publish_failures_total.
const (
	ReasonTooLarge      = "record_too_large"
	ReasonInvalidRecord = "invalid_record"
	ReasonTopicAuth     = "topic_authorization"
)

// unpublishable returns the reason why err means the record can never be
// published as it is, or "" when err is (or may be) an outage.
func unpublishable(err error) string {
	var kerr sarama.KError
	if errors.As(err, &kerr) {
		switch kerr {
		case sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge:
			return ReasonTooLarge
		case sarama.ErrInvalidRecord, sarama.ErrInvalidTimestamp:
			return ReasonInvalidRecord
		case sarama.ErrTopicAuthorizationFailed:
			return ReasonTopicAuth
		}
		return ""
	}
	// sarama refuses a record over Producer.MaxMessageBytes before sending
	// it, with a ConfigurationError that only its text tells apart.
	var cerr sarama.ConfigurationError
	if errors.As(err, &cerr) && strings.Contains(string(cerr), "MaxMessageBytes") {
		return ReasonTooLarge
	}
	return ""
}

// unpublishableError is a publish that failed for a reason retrying cannot
// fix, on every attempt.
type unpublishableError struct {
	reason string
	err    error
}

func (e *unpublishableError) Error() string {
	return "record cannot be published (" + e.reason + "): " + e.err.Error()
}
func (e *unpublishableError) Unwrap() error { return e.err }
