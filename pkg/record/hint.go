package record

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/config"
)

// A commit hint is a best-effort record the command-service sends after a
// commit, to <prefix>.hints.v1, so that the relay reads that aggregate at
// once instead of waiting for a scan (DESIGN.md, "The relay"). It is tiny:
// the key is the aggregate id (text, as on the event topics), the value the
// version the commit reached, in decimal. A hint may be lost, repeated or
// late: the relay's scan is the safety net, and a hint only ever makes the
// relay read an aggregate, never publish anything it did not read from
// event_store.

// HintTopicOf is the hint topic under a prefix: <prefix>.hints.v1.
func HintTopicOf(prefix string) string { return prefix + ".hints.v1" }

// HintTopic is the hint topic under the prefix.
func (t Topics) HintTopic() string { return HintTopicOf(t.TopicPrefix) }

// Hint is what a commit hint says: this aggregate reached this version.
type Hint struct {
	AggregateID gocql.UUID
	Version     int64
}

// EncodeHint is the record of a hint on topic.
func EncodeHint(topic string, h Hint) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(h.AggregateID.String()),
		Value: sarama.StringEncoder(strconv.FormatInt(h.Version, 10))}
}

// ErrBadHint is the error of a record that is not a hint.
var ErrBadHint = errors.New("not a commit hint")

// DecodeHint reads a hint record: its key must be an aggregate id and its
// value a positive version.
func DecodeHint(msg *sarama.ConsumerMessage) (Hint, error) {
	id, err := gocql.ParseUUID(string(msg.Key))
	if err != nil {
		return Hint{}, fmt.Errorf("%w: key %q is not an aggregate id", ErrBadHint, truncate(msg.Key))
	}
	v, err := strconv.ParseInt(string(msg.Value), 10, 64)
	if err != nil || v < 1 {
		return Hint{}, fmt.Errorf("%w: value %q is not a version", ErrBadHint, truncate(msg.Value))
	}
	return Hint{AggregateID: id, Version: v}, nil
}

// truncate keeps error messages about foreign records short.
func truncate(b []byte) string {
	const most = 64
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}

// HintProducerConfig sets what a sender of hints needs on sc (connection
// settings already applied): a hint is worth little once late, so it is
// acknowledged by the leader only, retried once, and given up quickly; no
// idempotence (a repeated hint costs one read of the aggregate).
func HintProducerConfig(sc *sarama.Config) {
	sc.Producer.Idempotent = false
	sc.Producer.RequiredAcks = sarama.WaitForLocal
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Retry.Max = 1
	sc.Producer.Retry.Backoff = 50 * time.Millisecond
	sc.Producer.Timeout = 2 * time.Second
	sc.Net.ReadTimeout, sc.Net.WriteTimeout = 5*time.Second, 5*time.Second
	sc.Producer.Partitioner = partitioner
	sc.Metadata.Retry.Max = 1
}

// HintConsumerConfig sets what the relay's reader of hints needs on sc: a
// group without offsets starts at the newest hint (the scan catches what
// came before), offsets are committed every second. A fetch returns as soon
// as one hint is there (Fetch.Min, 1 byte), so a longer broker-side wait
// than sarama's 250 ms costs no latency and spares an idle broker most of
// its fetch requests.
func HintConsumerConfig(sc *sarama.Config) {
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.MaxWaitTime = ConsumerMaxWait
	sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Return.Errors = false // sarama logs them; nobody has to drain them
}

// HintTopicSpec shapes the hint topic that EnsureHintTopic creates when it
// is missing (cdc-relay's hints.topic.* keys).
type HintTopicSpec struct {
	Partitions  int32         `mapstructure:"partitions" help:"partitions of the hint topic created at start (hints are tiny: a few suffice)"`
	Replication int16         `mapstructure:"replication" help:"replication factor of the hint topic created at start"`
	Retention   time.Duration `mapstructure:"retention" help:"how long the broker keeps hints (they are worthless once the scan has caught up)"`
}

// DefaultHintTopicSpec suits a single local broker: 3 partitions, one
// replica, an hour of retention.
func DefaultHintTopicSpec() HintTopicSpec {
	return HintTopicSpec{Partitions: 3, Replication: 1, Retention: time.Hour}
}

// Validate checks every key.
func (s HintTopicSpec) Validate() error {
	var errs []error
	if s.Partitions < 1 {
		errs = append(errs, config.Errorf("partitions", "must be at least 1, got %d", s.Partitions))
	}
	if s.Replication < 1 {
		errs = append(errs, config.Errorf("replication", "must be at least 1, got %d", s.Replication))
	}
	if s.Retention < time.Minute {
		errs = append(errs, config.Errorf("retention", "must be at least 1m, got %s", s.Retention))
	}
	return errors.Join(errs...)
}

// EnsureHintTopic creates the hint topic under prefix when missing, with
// spec's partitions, replication and retention; segments roll as often as
// the retention, so that old hints are really deleted. A topic that exists
// is left as it is.
func EnsureHintTopic(admin TopicAdmin, prefix string, spec HintTopicSpec) error {
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("listing topics: %w", err)
	}
	t := HintTopicOf(prefix)
	if _, ok := existing[t]; ok {
		return nil
	}
	ms := strconv.FormatInt(spec.Retention.Milliseconds(), 10)
	detail := &sarama.TopicDetail{NumPartitions: spec.Partitions, ReplicationFactor: spec.Replication,
		ConfigEntries: map[string]*string{"retention.ms": &ms, "segment.ms": &ms, "cleanup.policy": ptr("delete")}}
	if err := admin.CreateTopic(t, detail, false); err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", t, err)
	}
	return nil
}

func ptr(s string) *string { return &s }
