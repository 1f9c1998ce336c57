package recordtest

import (
	"errors"
	"slices"
	"sync"

	"github.com/IBM/sarama"
)

// Errors a producer returns, one of each class the relay tells apart
// (relay/failure.go): an outage is waited out and retried; the others are
// refused for the record's own sake, so retrying cannot fix them.
var (
	// ErrOutage is a broker outage: not enough in-sync replicas.
	ErrOutage error = sarama.ErrNotEnoughReplicas
	// ErrNoLeader is an outage too: the partition has no leader.
	ErrNoLeader error = sarama.ErrNotLeaderForPartition
	// ErrTooLarge refuses a record larger than the broker accepts.
	ErrTooLarge error = sarama.ErrMessageSizeTooLarge
	// ErrInvalidRecord refuses a record the broker finds invalid.
	ErrInvalidRecord error = sarama.ErrInvalidRecord
	// ErrTopicAuthorization refuses every record of a topic the producer
	// may not write.
	ErrTopicAuthorization error = sarama.ErrTopicAuthorizationFailed
)

// FailFunc decides the fate of a record about to be sent: nil sends it,
// an error fails it. It is called without the producer's lock, so it may
// block to hold a send in flight.
type FailFunc func(msg *sarama.ProducerMessage) error

// Failure is a record the producer refused, with the error it returned.
type Failure struct {
	Msg *sarama.ProducerMessage
	Err error
}

// Producer is an in-memory sarama.SyncProducer on a Broker: it appends
// every record it does not fail to its partition's log, in the order sent,
// sets the record's Partition and Offset as the real producer does, and
// remembers what it acknowledged and what it refused. Its methods are safe
// for concurrent use.
type Producer struct {
	broker *Broker

	mu       sync.Mutex
	failNext []error // errors of the next records sent, in order
	failKeys map[string]error
	failWhen FailFunc
	acked    []*sarama.ProducerMessage
	failed   []Failure
	sent     int
	closed   bool
}

var _ sarama.SyncProducer = (*Producer)(nil)

// NewProducer returns a producer on a new broker whose topics have the
// given number of partitions.
func NewProducer(partitions int32) *Producer { return NewBroker(partitions).Producer() }

// Producer returns a new producer that appends to b.
func (b *Broker) Producer() *Producer { return &Producer{broker: b, failKeys: map[string]error{}} }

// Broker is the broker the producer appends to.
func (p *Producer) Broker() *Broker { return p.broker }

// FailNext makes the next n records sent fail with err (after any
// failures already queued), whatever their key.
func (p *Producer) FailNext(n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.failNext = append(p.failNext, err)
	}
}

// FailKey makes every record keyed key fail with err until Heal.
func (p *Producer) FailKey(key string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failKeys[key] = err
}

// FailWhen asks f about every record sent after the queued FailNext
// failures and the FailKey keys; nil removes it.
func (p *Producer) FailWhen(f FailFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failWhen = f
}

// Heal removes every failure set by FailNext, FailKey and FailWhen.
func (p *Producer) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext, p.failKeys, p.failWhen = nil, map[string]error{}, nil
}

// Acked are the records acknowledged, in the order they were.
func (p *Producer) Acked() []*sarama.ProducerMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked)
}

// Failed are the records refused, in the order they were.
func (p *Producer) Failed() []Failure {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.failed)
}

// Sent is how many records were offered to the producer, acknowledged or
// not.
func (p *Producer) Sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// SendMessage sends one record.
func (p *Producer) SendMessage(msg *sarama.ProducerMessage) (partition int32, offset int64, err error) {
	if err := p.send(msg); err != nil {
		return -1, -1, err
	}
	return msg.Partition, msg.Offset, nil
}

// SendMessages sends records in order, each judged on its own: some may
// be acknowledged and others not (a partial batch), and the error is then
// sarama.ProducerErrors naming the refused ones, as sarama's is.
func (p *Producer) SendMessages(msgs []*sarama.ProducerMessage) error {
	var errs sarama.ProducerErrors
	for _, msg := range msgs {
		if err := p.send(msg); err != nil {
			errs = append(errs, &sarama.ProducerError{Msg: msg, Err: err})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (p *Producer) send(msg *sarama.ProducerMessage) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return sarama.ErrShuttingDown
	}
	p.sent++
	var err error
	if len(p.failNext) > 0 {
		err, p.failNext = p.failNext[0], p.failNext[1:]
	} else if msg.Key != nil {
		if key, kerr := msg.Key.Encode(); kerr == nil {
			err = p.failKeys[string(key)]
		}
	}
	when := p.failWhen
	p.mu.Unlock()
	if err == nil && when != nil {
		err = when(msg)
	}
	if err == nil {
		msg.Partition, msg.Offset, err = p.broker.append(msg)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed = append(p.failed, Failure{Msg: msg, Err: err})
		return err
	}
	p.acked = append(p.acked, msg)
	return nil
}

// Close makes every later send fail with sarama.ErrShuttingDown.
func (p *Producer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

var errNoTransactions = errors.New("recordtest: the producer is not transactional")

// TxnStatus reports a producer that is not transactional.
func (p *Producer) TxnStatus() sarama.ProducerTxnStatusFlag { return sarama.ProducerTxnFlagReady }

// IsTransactional is false: orderstream's producer is idempotent, not
// transactional.
func (p *Producer) IsTransactional() bool { return false }

// BeginTxn is not supported.
func (p *Producer) BeginTxn() error { return errNoTransactions }

// CommitTxn is not supported.
func (p *Producer) CommitTxn() error { return errNoTransactions }

// AbortTxn is not supported.
func (p *Producer) AbortTxn() error { return errNoTransactions }

// AddOffsetsToTxn is not supported.
func (p *Producer) AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata, string) error {
	return errNoTransactions
}

// AddOffsetsToTxnWithGroupMetadata is not supported.
func (p *Producer) AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata, *sarama.ConsumerGroupMetadata) error {
	return errNoTransactions
}

// AddMessageToTxn is not supported.
func (p *Producer) AddMessageToTxn(*sarama.ConsumerMessage, string, *string) error {
	return errNoTransactions
}

// AddMessageToTxnWithGroupMetadata is not supported.
func (p *Producer) AddMessageToTxnWithGroupMetadata(*sarama.ConsumerMessage, *sarama.ConsumerGroupMetadata, *string) error {
	return errNoTransactions
}
