// Package recordtest holds in-memory twins of the broker for unit tests of
// the code that writes and reads records: a Broker that keeps each topic's
// partitions as logs, a Producer (a sarama.SyncProducer) that appends to
// them and can be told to fail, and a ConsumerGroup (a
// sarama.ConsumerGroup) that delivers them. Records are placed by
// record.Partition, as the real producer places them, so per-key order
// holds as on the real broker.
//
// What they do not show: the real broker's batching, retries and
// idempotence, rebalances between several members, and anything across a
// restart of the broker. Integration tests keep the real broker for those.
package recordtest

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/record"
)

// Broker is an in-memory broker: topics of a fixed number of partitions,
// created on first use, each partition a log of records, and the offsets
// committed by consumer groups. Its methods are safe for concurrent use.
type Broker struct {
	partitions int32

	mu        sync.Mutex
	topics    map[string][][]*sarama.ConsumerMessage
	committed map[string]map[string]map[int32]int64 // group → topic → partition → next offset
	appended  chan struct{}                         // closed and replaced on every append
}

// NewBroker returns an empty broker whose topics have the given number of
// partitions (at least 1).
func NewBroker(partitions int32) *Broker {
	if partitions < 1 {
		partitions = 1
	}
	return &Broker{partitions: partitions, topics: map[string][][]*sarama.ConsumerMessage{},
		committed: map[string]map[string]map[int32]int64{}, appended: make(chan struct{})}
}

// Partitions is the number of partitions of every topic.
func (b *Broker) Partitions() int32 { return b.partitions }

// append places msg on its partition (record.Partition of its key, or
// msg.Partition under a manual partitioner) and returns where it landed.
func (b *Broker) append(msg *sarama.ProducerMessage) (int32, int64, error) {
	key, err := encode(msg.Key)
	if err != nil {
		return 0, 0, fmt.Errorf("encoding the key: %w", err)
	}
	value, err := encode(msg.Value)
	if err != nil {
		return 0, 0, fmt.Errorf("encoding the value: %w", err)
	}
	partition, err := record.Partition(string(key), b.partitions)
	if err != nil {
		return 0, 0, err
	}
	ts := msg.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	logs := b.topic(msg.Topic)
	offset := int64(len(logs[partition]))
	out := &sarama.ConsumerMessage{Topic: msg.Topic, Partition: partition, Offset: offset, Key: key, Value: value, Timestamp: ts}
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, &sarama.RecordHeader{Key: slices.Clone(h.Key), Value: slices.Clone(h.Value)})
	}
	logs[partition] = append(logs[partition], out)
	close(b.appended)
	b.appended = make(chan struct{})
	return partition, offset, nil
}

// topic returns a topic's partition logs, creating the topic; b.mu held.
func (b *Broker) topic(name string) [][]*sarama.ConsumerMessage {
	logs, ok := b.topics[name]
	if !ok {
		logs = make([][]*sarama.ConsumerMessage, b.partitions)
		b.topics[name] = logs
	}
	return logs
}

// Records are the records of a topic, partition by partition, each in
// offset order.
func (b *Broker) Records(topic string) []*sarama.ConsumerMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*sarama.ConsumerMessage
	for _, log := range b.topics[topic] {
		out = append(out, log...)
	}
	return out
}

// Committed is the next offset group will read of a topic's partition, or
// sarama.OffsetOldest when it committed none.
func (b *Broker) Committed(group, topic string, partition int32) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off, ok := b.committed[group][topic][partition]; ok {
		return off
	}
	return sarama.OffsetOldest
}

func (b *Broker) commit(group, topic string, partition int32, next int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.committed[group] == nil {
		b.committed[group] = map[string]map[int32]int64{}
	}
	if b.committed[group][topic] == nil {
		b.committed[group][topic] = map[int32]int64{}
	}
	b.committed[group][topic][partition] = next
}

// at returns the record at offset of a partition, or nil and a channel
// closed on the next append when there is none yet.
func (b *Broker) at(topic string, partition int32, offset int64) (*sarama.ConsumerMessage, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	log := b.topic(topic)[partition]
	if offset < int64(len(log)) {
		return log[offset], nil
	}
	return nil, b.appended
}

// highWaterMark is the offset the next record of a partition will get.
func (b *Broker) highWaterMark(topic string, partition int32) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return int64(len(b.topic(topic)[partition]))
}

// Consumed turns a record as a producer sends it into the record a
// consumer receives from the given partition and offset, without a broker.
func Consumed(msg *sarama.ProducerMessage, partition int32, offset int64) *sarama.ConsumerMessage {
	out := &sarama.ConsumerMessage{Topic: msg.Topic, Partition: partition, Offset: offset, Timestamp: msg.Timestamp}
	out.Key, _ = encode(msg.Key) // the encoders of records never fail
	out.Value, _ = encode(msg.Value)
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, &sarama.RecordHeader{Key: slices.Clone(h.Key), Value: slices.Clone(h.Value)})
	}
	return out
}

// encode is the bytes of a key or value; nil for none.
func encode(e sarama.Encoder) ([]byte, error) {
	if e == nil {
		return nil, nil
	}
	return e.Encode()
}
