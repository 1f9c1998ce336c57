// Package hintsource is the relay's hint source: it reads the commit hints
// the command-service sends after each commit (record.Hint, on
// <prefix>.hints.v1) and notifies the publisher of each hinted aggregate at
// once, so that the relay reads just that aggregate instead of polling the
// database for recent commits (DESIGN.md, "The relay"). Hints are best
// effort: one may be lost (a full sender queue, a broker outage, a crash
// between commit and hint), repeated or late; the scan source
// (relay/scansource) is the net that finds what a lost hint missed, and a
// hint never makes the relay publish anything it did not read from
// event_store.
//
// Bursts are coalesced: while an aggregate is being handled, further hints
// for it are folded into at most one more notification, sent once the
// first is done, and only when one of them names a version beyond the one
// that started the first (a hint for a version the first notification
// already covers, such as a redelivered one, is dropped: that version was
// committed before the notification, and the publisher reads the
// aggregate's head after it).
//
// Only the relay's lease holder runs it (a gated worker of cdc-relay), as a
// one-member consumer group: a group with no committed offsets starts from
// the newest hint (record.HintConsumerConfig), since the scan catches up on
// whatever came before; a new lease holder resumes from the offsets the
// previous one committed.
package hintsource

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
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/record"
)

// Config switches commit hints on and names the relay's consumer group
// (cdc-relay's hints.* keys). The command-service's hints.enabled must
// match: without hints the relay's fast poll must stay fast.
type Config struct {
	Enabled bool   `mapstructure:"enabled" help:"read commit hints from <relay.topic_prefix>.hints.v1 and let the relay's poll of recent commits back off to relay.idle_max_interval while it finds nothing; turn on together with command-service's hints.enabled"`
	Group   string `mapstructure:"group" help:"consumer group of the relay's hint reader"`
	// Topic shapes the hint topic cdc-relay creates when it is missing.
	Topic record.HintTopicSpec `mapstructure:"topic"`
}

// DefaultConfig has hints off (command-service's hints.enabled must be
// turned on with them, or the relay would wait for hints that never come),
// read by the group cdc-relay-hints when on.
func DefaultConfig() Config {
	return Config{Group: "cdc-relay-hints", Topic: record.DefaultHintTopicSpec()}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, config.Errorf("group", "must not be empty"))
	}
	return errors.Join(append(errs, config.Nest("topic", c.Topic.Validate()))...)
}

// Group is what the source needs of a consumer group: sarama.ConsumerGroup
// and recordtest.ConsumerGroup have it.
type Group interface {
	Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error
}

// Notify hands the publisher an aggregate to read; done, when not nil, is
// called once it was handled. The shape every source of the relay is run
// with (relay.Notify).
type Notify = func(ctx context.Context, aggregateID gocql.UUID, done func()) error

// Outcomes of a hint, the values of the outcome label.
const (
	outcomeNotified  = "notified"
	outcomeCoalesced = "coalesced"
	outcomeInvalid   = "invalid"
)

// seenFor is how long the source remembers that a hint announced an
// aggregate (Hinted): longer than the scan's read of recent commits takes
// to find, publish and judge it.
const seenFor = 10 * time.Second

// Source reads hints. Build it with New; Run it under a supervisor.
type Source struct {
	group  Group
	topic  string
	logger zerolog.Logger
	hints  *prometheus.CounterVec
	age    prometheus.Histogram
	errs   prometheus.Counter

	mu         sync.Mutex
	seen       map[gocql.UUID]time.Time // when a hint last announced each aggregate
	lastPruned time.Time
}

// New builds a hint source reading topic (record.HintTopicOf) through group
// and registers its metrics on reg (a nil reg disables them).
func New(group Group, topic string, logger zerolog.Logger, reg prometheus.Registerer) (*Source, error) {
	if group == nil {
		return nil, errors.New("hintsource: nil group")
	}
	if topic == "" {
		return nil, errors.New("hintsource: empty topic")
	}
	s := &Source{group: group, topic: topic, logger: logger, seen: map[gocql.UUID]time.Time{}, lastPruned: time.Now(),
		hints: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "hints_total",
			Help: "Commit hints read, by outcome: notified (the publisher was told), coalesced (folded into a notification in flight), invalid (not a hint)."}, []string{"outcome"}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "hint_age_seconds",
			Help: "Time from a hint's send (its record timestamp) to its read by the relay.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "relay", Name: "hint_read_errors_total",
			Help: "Sessions of the hint reader that failed (the broker away or refusing); it joins again after a backoff while the scan publishes."}),
	}
	for _, o := range []string{outcomeNotified, outcomeCoalesced, outcomeInvalid} {
		s.hints.WithLabelValues(o)
	}
	if reg != nil {
		cs := []prometheus.Collector{s.hints, s.age, s.errs}
		for i, c := range cs {
			if err := reg.Register(c); err != nil {
				for _, done := range cs[:i] {
					reg.Unregister(done)
				}
				return nil, fmt.Errorf("hintsource: registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Hinted reports whether a hint announcing the aggregate was read at or
// after since (at most seenFor ago): the scan source asks it
// (scansource.WithHints) to tell a commit a lost hint missed from one whose
// hint did its work. Safe for concurrent use.
func (s *Source) Hinted(id gocql.UUID, since time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.seen[id]
	return ok && !at.Before(since)
}

// saw records that a hint announced id, forgetting what is older than
// seenFor about once per seenFor.
func (s *Source) saw(id gocql.UUID) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[id] = now
	if now.Sub(s.lastPruned) < seenFor {
		return
	}
	for k, at := range s.seen {
		if now.Sub(at) > seenFor {
			delete(s.seen, k)
		}
	}
	s.lastPruned = now
}

// Run reads hints and notifies until ctx is done (it then returns nil). A
// failure of the consumer group (the broker away or refusing) is counted,
// logged and retried after a backoff, never returned: hints are best effort,
// the scan publishes meanwhile, and a broker outage must not spend the
// worker's restart budget and stop the relay.
func (s *Source) Run(ctx context.Context, notify Notify) error {
	ctx, cancel := context.WithCancel(ctx)
	t := &tracker{ctx: ctx, inflight: map[gocql.UUID]*entry{}, notify: notify, hints: s.hints}
	defer func() {
		cancel()
		t.close() // re-notifications end with ctx
	}()
	h := &handler{s: s, t: t}
	s.logger.Info().Str("topic", s.topic).Msg("reading commit hints")
	// Sessions that end at once (a group rebalancing over and over) are
	// joined again after a backoff, not in a busy loop.
	bo := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}.Start()
	failures := 0 // in a row
	for {
		began := time.Now()
		err := s.group.Consume(ctx, []string{s.topic}, h)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.errs.Inc()
			failures++
			// Logged at the 1st, 2nd, 4th, 8th … failure in a row: an
			// outage of minutes leaves a few lines, not one per attempt.
			if failures&(failures-1) == 0 {
				s.logger.Warn().Err(err).Int("failures", failures).Str("topic", s.topic).Msg("reading commit hints failed; retrying (the scan publishes meanwhile)")
			}
			if bo.Wait(ctx) != nil {
				return nil
			}
			continue
		}
		if failures > 0 {
			s.logger.Info().Int("failures", failures).Str("topic", s.topic).Msg("reading commit hints again")
			failures = 0
		}
		// A rebalance ended the session: join again.
		if time.Since(began) > time.Second {
			bo.Reset()
			continue
		}
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

// handler is the consumer group handler of the hint topic.
type handler struct {
	s *Source
	t *tracker
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim notifies the publisher of each hint of a partition. A record
// that is not a hint is counted and skipped; a notify that fails (ctx
// ended) ends the claim with its hint unmarked.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		hint, err := record.DecodeHint(msg)
		if err != nil {
			h.s.hints.WithLabelValues(outcomeInvalid).Inc()
			h.s.logger.Debug().Err(err).Int32("partition", msg.Partition).Int64("offset", msg.Offset).Msg("skipping a record of the hint topic")
			sess.MarkMessage(msg, "")
			continue
		}
		if !msg.Timestamp.IsZero() {
			h.s.age.Observe(max(time.Since(msg.Timestamp), 0).Seconds())
		}
		h.s.saw(hint.AggregateID)
		if err := h.t.offer(hint); err != nil {
			return nil // ctx ended: the session is ending, this hint unmarked
		}
		sess.MarkMessage(msg, "")
	}
	return nil
}

// tracker coalesces hints per aggregate while a notification is in flight.
type tracker struct {
	ctx    context.Context // Run's: notifications outlive a session
	notify Notify
	hints  *prometheus.CounterVec

	mu       sync.Mutex
	inflight map[gocql.UUID]*entry
	closed   bool
	wg       sync.WaitGroup // re-notifications under way
}

// close waits for the re-notifications under way (ctx has ended, so they
// end soon) and starts no more.
func (t *tracker) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// entry is an aggregate with a notification in flight.
type entry struct {
	covered int64 // the version of the hint that started the notification
	again   int64 // the highest later version hinted meanwhile; 0 for none
}

// offer notifies the publisher of a hinted aggregate, or folds the hint
// into the notification in flight.
func (t *tracker) offer(h record.Hint) error {
	t.mu.Lock()
	if e, ok := t.inflight[h.AggregateID]; ok {
		if h.Version > e.covered {
			e.again = max(e.again, h.Version)
		}
		t.mu.Unlock()
		t.hints.WithLabelValues(outcomeCoalesced).Inc()
		return nil
	}
	t.inflight[h.AggregateID] = &entry{covered: h.Version}
	t.mu.Unlock()
	t.hints.WithLabelValues(outcomeNotified).Inc()
	return t.send(h.AggregateID)
}

// send notifies the publisher; when it is done, a hint folded in meanwhile
// notifies once more.
func (t *tracker) send(id gocql.UUID) error {
	err := t.notify(t.ctx, id, func() { t.done(id) })
	if err != nil {
		t.mu.Lock()
		delete(t.inflight, id)
		t.mu.Unlock()
	}
	return err
}

// done ends an aggregate's notification. It runs on the publisher's
// worker, which must not wait for its own queue: a further notification is
// sent from a goroutine of its own (at most one per aggregate).
func (t *tracker) done(id gocql.UUID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.inflight[id]
	if !ok {
		return
	}
	if e.again == 0 || t.closed || t.ctx.Err() != nil {
		delete(t.inflight, id)
		return
	}
	e.covered, e.again = e.again, 0
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_ = t.send(id) // fails only when ctx ended: nothing more to do
	}()
}
