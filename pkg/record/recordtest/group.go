package recordtest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/IBM/sarama"
)

// ConsumerGroup is an in-memory sarama.ConsumerGroup on a Broker with one
// member, which claims every partition of the topics it consumes. Like
// sarama's, a session starts with Setup, runs ConsumeClaim once per
// partition, ends when the context ends, when any ConsumeClaim returns or
// on Rebalance, and then calls Cleanup and commits the offsets marked.
// Records are delivered from the group's committed offset (the oldest
// record when it has none), so a record not marked is delivered again in
// the next session, as after a restart. Errors a ConsumeClaim returns go
// to Errors.
type ConsumerGroup struct {
	broker *Broker
	group  string

	mu         sync.Mutex
	generation int32
	rebalance  context.CancelFunc // ends the running session
	closed     bool
	errs       chan error
}

var _ sarama.ConsumerGroup = (*ConsumerGroup)(nil)

// ConsumerGroup returns a consumer group named group on b.
func (b *Broker) ConsumerGroup(group string) *ConsumerGroup {
	return &ConsumerGroup{broker: b, group: group, errs: make(chan error, 64)}
}

// Generation is the number of sessions started so far.
func (g *ConsumerGroup) Generation() int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generation
}

// Rebalance ends the running session, as a member joining or leaving the
// group would: Consume returns nil and the caller consumes again.
func (g *ConsumerGroup) Rebalance() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rebalance != nil {
		g.rebalance()
	}
}

// Consume runs one session on topics with handler; see ConsumerGroup.
func (g *ConsumerGroup) Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return sarama.ErrClosedConsumerGroup
	}
	if len(topics) == 0 {
		g.mu.Unlock()
		return sarama.ConfigurationError("no topics provided")
	}
	g.generation++
	sctx, cancel := context.WithCancel(ctx)
	g.rebalance = cancel
	claims := map[string][]int32{}
	for _, t := range topics {
		for p := range g.broker.partitions {
			claims[t] = append(claims[t], p)
		}
	}
	s := &session{ctx: sctx, group: g, generation: g.generation, claims: claims, marks: map[string]map[int32]int64{}}
	g.mu.Unlock()
	defer cancel()

	if err := handler.Setup(s); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, t := range slices.Sorted(maps.Keys(claims)) {
		for _, p := range claims[t] {
			c := &claim{topic: t, partition: p, initial: g.broker.Committed(g.group, t, p), broker: g.broker, messages: make(chan *sarama.ConsumerMessage)}
			feeding := make(chan struct{})
			go func() { // sarama's partition consumer: feeds the claim until the session ends
				defer close(feeding)
				c.feed(sctx)
			}()
			wg.Go(func() {
				defer cancel() // the first claim to end ends the session, as in sarama
				if err := handler.ConsumeClaim(s, c); err != nil {
					g.report(err)
				}
				cancel()
				<-feeding
			})
		}
	}
	<-sctx.Done()
	wg.Wait()
	err := handler.Cleanup(s)
	s.Commit()
	return err
}

func (g *ConsumerGroup) report(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	select {
	case g.errs <- err:
	default: // nobody reads: dropped, as sarama drops errors it cannot hand over
	}
}

// Errors are the errors ConsumeClaim returned.
func (g *ConsumerGroup) Errors() <-chan error { return g.errs }

// Close makes Consume fail with sarama.ErrClosedConsumerGroup and closes
// Errors.
func (g *ConsumerGroup) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return sarama.ErrClosedConsumerGroup
	}
	g.closed = true
	if g.rebalance != nil {
		g.rebalance()
	}
	close(g.errs)
	return nil
}

// Pause does nothing: the fake's claims are not paused.
func (g *ConsumerGroup) Pause(map[string][]int32) {}

// Resume does nothing.
func (g *ConsumerGroup) Resume(map[string][]int32) {}

// PauseAll does nothing.
func (g *ConsumerGroup) PauseAll() {}

// ResumeAll does nothing.
func (g *ConsumerGroup) ResumeAll() {}

// session is a sarama.ConsumerGroupSession.
type session struct {
	ctx        context.Context
	group      *ConsumerGroup
	generation int32
	claims     map[string][]int32

	mu    sync.Mutex
	marks map[string]map[int32]int64 // topic → partition → next offset
}

func (s *session) Claims() map[string][]int32 { return s.claims }
func (s *session) MemberID() string           { return "recordtest-member" }
func (s *session) GenerationID() int32        { return s.generation }
func (s *session) Context() context.Context   { return s.ctx }

func (s *session) MarkOffset(topic string, partition int32, offset int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks[topic] == nil {
		s.marks[topic] = map[int32]int64{}
	}
	if offset > s.marks[topic][partition] {
		s.marks[topic][partition] = offset
	}
}

func (s *session) ResetOffset(topic string, partition int32, offset int64, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks[topic] == nil {
		s.marks[topic] = map[int32]int64{}
	}
	s.marks[topic][partition] = offset
}

func (s *session) MarkMessage(msg *sarama.ConsumerMessage, metadata string) {
	s.MarkOffset(msg.Topic, msg.Partition, msg.Offset+1, metadata)
}

// Commit writes the marked offsets to the broker (sarama commits them
// every AutoCommit.Interval and at the end of a session).
func (s *session) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range s.marks {
		for p, next := range parts {
			s.group.broker.commit(s.group.group, topic, p, next)
		}
	}
}

// claim is a sarama.ConsumerGroupClaim.
type claim struct {
	topic     string
	partition int32
	initial   int64
	broker    *Broker
	messages  chan *sarama.ConsumerMessage
}

func (c *claim) Topic() string                            { return c.topic }
func (c *claim) Partition() int32                         { return c.partition }
func (c *claim) InitialOffset() int64                     { return c.initial }
func (c *claim) HighWaterMarkOffset() int64               { return c.broker.highWaterMark(c.topic, c.partition) }
func (c *claim) Messages() <-chan *sarama.ConsumerMessage { return c.messages }

// feed delivers the partition's records from the initial offset as they
// arrive, until ctx ends; then it closes Messages.
func (c *claim) feed(ctx context.Context) {
	defer close(c.messages)
	next := max(c.initial, 0)
	for {
		msg, appended := c.broker.at(c.topic, c.partition, next)
		if msg == nil {
			select {
			case <-appended:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case c.messages <- msg:
			next++
		case <-ctx.Done():
			return
		}
	}
}
