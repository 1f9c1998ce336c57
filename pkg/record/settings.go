package record

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/config"
)

// partitioner places a record by its key (the aggregate id), so that one
// aggregate's records share a partition and keep their order. It is
// sarama's hash partitioner (FNV-1a of the key), which is also what a
// writer of the topics in another language must use.
func partitioner(topic string) sarama.Partitioner { return sarama.NewHashPartitioner(topic) }

// Partition is the partition of a topic with n partitions that the
// producer (ProducerConfig) gives a record keyed by key.
func Partition(key string, n int32) (int32, error) {
	if n < 1 {
		return 0, fmt.Errorf("a topic needs at least one partition, got %d", n)
	}
	return partitioner("").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
}

// ProducerConfig sets what a producer of records needs on sc (connection
// settings already applied, kafka.Config.Sarama): idempotence, acks=all,
// one request in flight per broker, key-hash partitioning.
func ProducerConfig(sc *sarama.Config) {
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 5
	sc.Producer.Retry.Backoff = 100 * time.Millisecond
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = partitioner
}

// NewProducer builds the idempotent, acks=all producer the relay needs on
// sc (connection settings already applied).
func NewProducer(brokers []string, sc *sarama.Config) (sarama.SyncProducer, error) {
	ProducerConfig(sc)
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	return p, nil
}

// ConsumerConfig sets what a consumer group of records needs on sc: start
// from the oldest record when the group has no offset yet (a projector
// must see every event), commit offsets every second, and report errors.
//
// A fetch returns as soon as one byte is there (Fetch.Min) and otherwise
// waits ConsumerMaxWait at the broker: a record is handed over the moment
// it arrives whatever the wait, so the longer wait than sarama's 250 ms
// adds no latency and spares an idle consumer one fetch in two (each one a
// wake-up of the process and of the broker). Requests queued behind a
// waiting fetch on the same broker connection (the readiness check's
// metadata request, heartbeats, offset commits) may wait for it, at most
// ConsumerMaxWait: a quarter of admin.check_timeout (2 s), so that a
// readiness check on a busy node keeps its margin (1 s was measured to
// push the check's worst case to 1.4 s), and far below the group's
// session timeout (10 s).
func ConsumerConfig(sc *sarama.Config) {
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.MaxWaitTime = ConsumerMaxWait
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Return.Errors = true
}

// ConsumerMaxWait is how long the broker holds a consumer's fetch while it
// has no record to return (ConsumerConfig, HintConsumerConfig).
const ConsumerMaxWait = 500 * time.Millisecond

// NewConsumerGroup joins group with the consumer settings on sc
// (connection settings already applied).
func NewConsumerGroup(brokers []string, group string, sc *sarama.Config) (sarama.ConsumerGroup, error) {
	ConsumerConfig(sc)
	g, err := sarama.NewConsumerGroup(brokers, group, sc)
	if err != nil {
		return nil, fmt.Errorf("joining consumer group %s: %w", group, err)
	}
	return g, nil
}

// TopicSpec shapes the topics EnsureTopics creates when they are missing
// (cdc-relay's topics.* keys).
type TopicSpec struct {
	Partitions  int32 `mapstructure:"partitions" help:"partitions of each aggregate topic created at start"`
	Replication int16 `mapstructure:"replication" help:"replication factor of each aggregate topic created at start"`
}

// DefaultTopicSpec suits a single local broker: 12 partitions (the unit of
// parallelism of a projector), one replica.
func DefaultTopicSpec() TopicSpec { return TopicSpec{Partitions: 12, Replication: 1} }

// Validate checks every key.
func (s TopicSpec) Validate() error {
	var errs []error
	if s.Partitions < 1 {
		errs = append(errs, config.Errorf("partitions", "must be at least 1, got %d", s.Partitions))
	}
	if s.Replication < 1 {
		errs = append(errs, config.Errorf("replication", "must be at least 1, got %d", s.Replication))
	}
	return errors.Join(errs...)
}

// TopicAdmin is the part of sarama's ClusterAdmin that creates topics.
type TopicAdmin interface {
	ListTopics() (map[string]sarama.TopicDetail, error)
	CreateTopic(topic string, detail *sarama.TopicDetail, validateOnly bool) error
}

// EnsureTopics creates the topics of every aggregate type under prefix when
// missing, with the given partitions and replication factor (a topic that
// exists is left as it is).
func EnsureTopics(admin TopicAdmin, prefix string, partitions int32, replication int16) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	for _, t := range TopicsOf(prefix) {
		if _, ok := existing[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: replication}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}
