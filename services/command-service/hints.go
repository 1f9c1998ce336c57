package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/record"
)

// HintsConfig switches on the commit hints (hints.* keys): after each
// commit, a tiny record naming the aggregate and its version goes to
// <topic_prefix>.hints.v1, so that cdc-relay publishes the commit at once
// instead of finding it by polling the database (DESIGN.md, "The relay").
type HintsConfig struct {
	Enabled bool `mapstructure:"enabled" help:"send a commit hint to <hints.topic_prefix>.hints.v1 after each commit (best effort: never delays or fails a command); turn on together with cdc-relay's hints.enabled; needs the kafka section"`
	// Topics names the hint topic (key topic_prefix): cdc-relay's
	// relay.topic_prefix.
	record.Topics `mapstructure:",squash"`
	Queue         int `mapstructure:"queue" help:"hints waiting to be sent, at most; a hint that finds the queue full (the broker slow or down) is dropped and counted, never waited for"`
	Batch         int `mapstructure:"batch" help:"hints sent in one request, at most"`
}

// DefaultHintsConfig has hints off: cdc-relay's hints.enabled must be
// turned on with them.
func DefaultHintsConfig() HintsConfig {
	return HintsConfig{Topics: record.DefaultTopics(), Queue: 4096, Batch: 256}
}

// Validate checks every key.
func (c HintsConfig) Validate() error {
	var errs []error
	if c.Queue < 1 || c.Queue > 1<<20 {
		errs = append(errs, config.Errorf("queue", "must be 1..1048576, got %d", c.Queue))
	}
	if c.Batch < 1 || c.Batch > c.Queue {
		errs = append(errs, config.Errorf("batch", "must be 1..queue (%d), got %d", c.Queue, c.Batch))
	}
	return errors.Join(append(errs, c.Topics.Validate())...)
}

// hintProducer is what the sender needs of a producer: sarama's
// SyncProducer and recordtest's Producer have it.
type hintProducer interface {
	SendMessages(msgs []*sarama.ProducerMessage) error
	Close() error
}

// Reasons a hint is dropped, the values of the reason label.
const (
	dropQueueFull  = "queue_full"
	dropSendFailed = "send_failed"
)

// hintSender sends commit hints from a bounded queue, in batches, on a
// worker of its own: a command only ever offers a hint to the queue, and a
// full queue drops it. A lost hint costs latency, never an event: the
// relay's scan finds every commit.
type hintSender struct {
	topic   string
	queue   chan record.Hint
	batch   int
	connect func() (hintProducer, error)
	logger  zerolog.Logger
	sent    prometheus.Counter
	dropped *prometheus.CounterVec

	mu        sync.Mutex
	lastWarn  time.Time
	unwarned  int // failures not logged since lastWarn
	warnEvery time.Duration
}

// newHintSender builds a sender that connects with connect (retried on
// its worker, so that a broker down at start delays nothing) and registers
// its metrics on reg.
func newHintSender(cfg HintsConfig, connect func() (hintProducer, error), logger zerolog.Logger, reg prometheus.Registerer) (*hintSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hints: %w", err)
	}
	s := &hintSender{
		topic: cfg.HintTopic(), queue: make(chan record.Hint, cfg.Queue), batch: cfg.Batch, connect: connect,
		logger: logger.With().Str("component", "hints").Logger(), warnEvery: time.Minute,
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "command", Name: "hints_sent_total",
			Help: "Commit hints the broker acknowledged."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "command", Name: "hints_dropped_total",
			Help: "Commit hints given up, by reason: queue_full (the broker slow or down), send_failed (the broker refused or did not answer); the relay's scan finds those commits later."}, []string{"reason"}),
	}
	for _, r := range []string{dropQueueFull, dropSendFailed} {
		s.dropped.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{s.sent, s.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hints: registering metrics: %w", err)
		}
	}
	return s, nil
}

// Hint offers the hint of a commit to the queue, never waiting: when the
// queue is full it is dropped and counted. A nil sender (hints off) does
// nothing.
func (s *hintSender) Hint(id gocql.UUID, version int64) {
	if s == nil {
		return
	}
	select {
	case s.queue <- record.Hint{AggregateID: id, Version: version}:
	default:
		s.dropped.WithLabelValues(dropQueueFull).Inc()
	}
}

// Run sends queued hints until ctx ends (it then returns nil): it connects
// (retrying with backoff while the broker is away, hints meanwhile pile up
// to the queue's bound and the rest are dropped), then sends what is
// queued, up to Batch hints a request. A failed send drops its hints and
// waits a backoff before the next.
func (s *hintSender) Run(ctx context.Context) error {
	bo := backoff.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second}.Start()
	var p hintProducer
	defer func() {
		if p != nil {
			_ = p.Close()
		}
	}()
	batch := make([]*sarama.ProducerMessage, 0, s.batch)
	for {
		if p == nil {
			var err error
			if p, err = s.connect(); err != nil {
				p = nil
				s.warn(err, "connecting to the broker for commit hints")
				if bo.Wait(ctx) != nil {
					return nil
				}
				continue
			}
			s.logger.Info().Str("topic", s.topic).Msg("sending commit hints")
			bo.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case h := <-s.queue:
			batch = append(batch[:0], record.EncodeHint(s.topic, h))
		}
	fill:
		for len(batch) < s.batch {
			select {
			case h := <-s.queue:
				batch = append(batch, record.EncodeHint(s.topic, h))
			default:
				break fill
			}
		}
		failed := len(batch)
		err := p.SendMessages(batch)
		var perrs sarama.ProducerErrors
		switch {
		case err == nil:
			failed = 0
		case errors.As(err, &perrs):
			failed = min(len(perrs), len(batch))
		}
		s.sent.Add(float64(len(batch) - failed))
		if failed == 0 {
			bo.Reset()
			continue
		}
		s.dropped.WithLabelValues(dropSendFailed).Add(float64(failed))
		s.warn(err, "sending commit hints")
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

// warn logs a failure, at most once per warnEvery with the count of those
// left unlogged: a broker outage must not flood the log at the command
// rate.
func (s *hintSender) warn(err error, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.lastWarn) < s.warnEvery {
		s.unwarned++
		return
	}
	s.logger.Warn().Err(err).Int("failures_since_last_warning", s.unwarned).Msg(msg + " (hints are best effort: the relay's scan finds these commits)")
	s.lastWarn, s.unwarned = time.Now(), 0
}

// kafkaHintProducer connects a producer of hints to the brokers.
func kafkaHintProducer(cfg kafka.Config, clientID string) func() (hintProducer, error) {
	return func() (hintProducer, error) {
		sc, err := cfg.Sarama(clientID)
		if err != nil {
			return nil, err
		}
		record.HintProducerConfig(sc)
		p, err := sarama.NewSyncProducer(cfg.Brokers, sc)
		if err != nil {
			return nil, fmt.Errorf("creating the hint producer: %w", err)
		}
		return p, nil
	}
}

// hintingStore sends a hint after every commit its event store makes.
type hintingStore struct {
	eventstore.RepositoryStore
	hints *hintSender
}

// Append commits, then offers the commit's hint (never waiting for it).
func (s hintingStore) Append(ctx context.Context, aggregateType string, id gocql.UUID, expected int64, events []eventstore.Event) (int64, error) {
	v, err := s.RepositoryStore.Append(ctx, aggregateType, id, expected, events)
	if err == nil && len(events) > 0 {
		s.hints.Hint(id, v)
	}
	return v, err
}
