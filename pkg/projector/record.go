package projector

import (
	"context"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/record"
)

// Record is one broker record as the projector handles it: the record
// contract's reading of it (record.Decoded), so that tests can feed the
// projector records directly.
type Record record.Decoded

// decode reads a consumed record (record.Decode).
func decode(msg *sarama.ConsumerMessage) (Record, error) {
	d, err := record.Decode(msg)
	return Record(d), err
}

// ConsumerGroup is the part of sarama.ConsumerGroup the projector
// consumes through; recordtest.ConsumerGroup is its in-memory twin.
type ConsumerGroup interface {
	Consume(ctx context.Context, topics []string, handler sarama.ConsumerGroupHandler) error
	Errors() <-chan error
	Close() error
}

// JoinGroup joins the named consumer group.
type JoinGroup func(group string) (ConsumerGroup, error)

// OnClient joins consumer groups on client, which must be configured with
// record.ConsumerConfig.
func OnClient(client sarama.Client) JoinGroup {
	return func(group string) (ConsumerGroup, error) { return sarama.NewConsumerGroupFromClient(group, client) }
}
