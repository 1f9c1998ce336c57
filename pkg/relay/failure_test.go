package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"
)

func TestUnpublishableClassifiesProducerErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"broker says too large", sarama.ErrMessageSizeTooLarge, ReasonTooLarge},
		{"too large wrapped as sarama returns it", &sarama.ProducerError{Msg: &sarama.ProducerMessage{}, Err: sarama.ErrMessageSizeTooLarge}, ReasonTooLarge},
		{"record list too large", fmt.Errorf("sending: %w", sarama.ErrMessageSetSizeTooLarge), ReasonTooLarge},
		{"producer refuses before sending", sarama.ConfigurationError("Attempt to produce message larger than configured Producer.MaxMessageBytes: 2000 > 1000"), ReasonTooLarge},
		{"topic authorisation", sarama.ErrTopicAuthorizationFailed, ReasonTopicAuth},
		{"invalid record", sarama.ErrInvalidRecord, ReasonInvalidRecord},
		// Outages: waited out, never dead-lettered.
		{"no brokers", sarama.ErrOutOfBrokers, ""},
		{"no leader", sarama.ErrNotLeaderForPartition, ""},
		{"not enough replicas", sarama.ErrNotEnoughReplicas, ""},
		{"timeout", sarama.ErrRequestTimedOut, ""},
		{"closed connection", io.EOF, ""},
		{"closed producer", sarama.ErrClosedClient, ""},
		{"unknown topic (may be being created)", sarama.ErrUnknownTopicOrPartition, ""},
		{"cluster authorisation is not one record's fault", sarama.ErrClusterAuthorizationFailed, ""},
		{"other configuration error", sarama.ConfigurationError("Producing headers requires Kafka at least v0.11"), ""},
		{"breaker open", gobreaker.ErrOpenState, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, unpublishable(tc.err))
		})
	}
}

// scriptedProducer fails the attempts with the scripted errors, in order,
// and succeeds once they run out.
type scriptedProducer struct{ errs []error }

func (p *scriptedProducer) SendMessage(*sarama.ProducerMessage) (int32, int64, error) {
	if len(p.errs) == 0 {
		return 0, 1, nil
	}
	err := p.errs[0]
	p.errs = p.errs[1:]
	return -1, -1, err
}

func newSendRelay(t *testing.T, p Producer) (*Relay, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxAttempts, cfg.InitialBackoff, cfg.MaxBackoff, cfg.BreakerFailures, cfg.BreakerOpenFor = 3, time.Millisecond, time.Millisecond, 2, time.Millisecond
	reg := prometheus.NewRegistry()
	r, err := New(cfg, nil, nil, p, zerolog.Nop(), reg)
	require.NoError(t, err)
	return r, reg
}

func TestSendDeadLettersOnlyARecordRefusedOnEveryAttempt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := &sarama.ProducerMessage{Topic: "t"}

	// Refused as too large on all 3 attempts: unpublishable, and the
	// breaker (2 failures trip it) stays closed for the other records.
	r, _ := newSendRelay(t, &scriptedProducer{errs: []error{sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSizeTooLarge}})
	err := r.send(ctx, msg)
	var unpub *unpublishableError
	require.ErrorAs(t, err, &unpub)
	require.Equal(t, ReasonTooLarge, unpub.reason)
	require.ErrorIs(t, err, sarama.ErrMessageSizeTooLarge)
	require.Equal(t, gobreaker.StateClosed, r.breaker.State())
	require.InDelta(t, 3, testutil.ToFloat64(r.m.failures.WithLabelValues(ReasonTooLarge)), 0)

	// An outage in between: the refusals may have been the batch's, not
	// the record's; it is an ordinary failure, retried later.
	r, _ = newSendRelay(t, &scriptedProducer{errs: []error{sarama.ErrMessageSizeTooLarge, sarama.ErrOutOfBrokers, sarama.ErrMessageSizeTooLarge}})
	err = r.send(ctx, msg)
	require.Error(t, err)
	require.False(t, errors.As(err, &unpub), "%v", err)

	// Outage errors never make a record unpublishable, however many.
	r, _ = newSendRelay(t, &scriptedProducer{errs: []error{sarama.ErrOutOfBrokers, sarama.ErrNotEnoughReplicas, sarama.ErrRequestTimedOut, sarama.ErrOutOfBrokers}})
	err = r.send(ctx, msg)
	require.Error(t, err)
	require.False(t, errors.As(err, &unpub), "%v", err)

	// A refusal that a later attempt overcomes is no failure.
	r, _ = newSendRelay(t, &scriptedProducer{errs: []error{sarama.ErrMessageSizeTooLarge}})
	require.NoError(t, r.send(ctx, msg))
}
