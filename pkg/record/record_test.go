package record_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// events are stored events of both aggregate types as the relay reads
// them (current layouts), with and without trace context.
func events() []eventstore.Event {
	eur := must(value.NewCurrency("EUR"))
	var (
		oc  eventcodec.OrderCodec
		cc  eventcodec.CustomerCodec
		out []eventstore.Event
	)
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	add := func(aggregateType, typ string, data []byte, trace map[string]string) {
		out = append(out, eventstore.Event{
			AggregateID: gocql.UUID(uuid.New()), AggregateType: aggregateType, Sequence: int64(len(out) + 1), EventID: gocql.UUID(uuid.New()),
			Type: typ, Version: 1, Data: data, CausationID: "cause", CorrelationID: "corr", OccurredAt: at, TraceContext: trace,
		})
	}
	for _, e := range []order.Event{
		order.OrderCreated{OrderID: "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b",
			Items: []value.OrderItem{must(value.NewOrderItem("sku-1", 2, must(value.NewMoney(1999, eur))))}, Currency: eur},
		order.OrderConfirmed{},
		order.OrderShipped{Carrier: "DHL", TrackingNumber: "JD0146"},
		order.OrderCancelled{Reason: "changed mind", CancelledBy: "customer", PreviousStatus: value.OrderStatusShipped},
	} {
		typ, data := must2(oc.EncodeEvent(e))
		add(order.AggregateType, typ, data, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=1"})
	}
	for _, e := range []customer.Event{
		customer.CustomerRegistered{CustomerID: "6a1f0d3e-2b7c-4b8e-9f55-3c2d1e0f9a8b", Name: "Ada", Email: must(value.NewEmail("ada@example.org")),
			Phone: must(value.NewPhoneNumber("+353 1 234 5678")), Tier: value.CustomerTierBronze, Status: value.CustomerStatusActive},
		customer.CustomerSuspended{Reason: "chargeback"},
	} {
		typ, data := must2(cc.EncodeEvent(e))
		add(customer.AggregateType, typ, data, nil)
	}
	return out
}

func must2(typ string, data []byte, err error) (string, []byte) {
	if err != nil {
		panic(err)
	}
	return typ, data
}

func TestTopics(t *testing.T) {
	require.Equal(t, "orderstream.orders.v1", record.DefaultTopics().Topic("order"))
	require.Equal(t, "p.customers.v1", record.TopicOf("p", "customer"))
	require.Equal(t, []string{"p.orders.v1", "p.customers.v1"}, record.TopicsOf("p"))
	require.NoError(t, record.DefaultTopics().Validate())
	require.ErrorContains(t, record.Topics{}.Validate(), `"topic_prefix"`)

	require.NoError(t, record.DefaultTopicSpec().Validate())
	err := config.Nest("topics", record.TopicSpec{}.Validate())
	require.ErrorContains(t, err, `"topics.partitions"`)
	require.ErrorContains(t, err, `"topics.replication"`)
}

// TestDecodeReadsTheRelaysRecords: a record Encode builds, consumed,
// decodes to its event, place and headers.
func TestDecodeReadsTheRelaysRecords(t *testing.T) {
	e := eventstore.Event{
		AggregateID: gocql.UUID(uuid.New()), AggregateType: "order", Sequence: 3, EventID: gocql.UUID(uuid.New()),
		Type: "OrderShipped", Version: 1, Data: []byte(`{"carrier":"DHL","trackingNumber":"T1"}`),
		CausationID: "cause", CorrelationID: "corr", OccurredAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		TraceContext: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	msg, err := record.Encode(e, record.DefaultTopicPrefix)
	require.NoError(t, err)
	require.Equal(t, "orderstream.orders.v1", msg.Topic)
	consumed := recordtest.Consumed(msg, 2, 7)
	rec, err := record.Decode(consumed)
	require.NoError(t, err)
	require.NoError(t, rec.Err)
	require.Equal(t, e.AggregateID, rec.AggregateID)
	require.Equal(t, int64(3), rec.Sequence)
	require.Equal(t, int32(2), rec.Partition)
	require.Equal(t, int64(7), rec.Offset)
	require.Equal(t, e.EventID, rec.Event.EventID)
	require.Equal(t, e.Type, rec.Event.Type)
	require.Equal(t, e.OccurredAt, rec.Event.OccurredAt)
	require.Equal(t, e.TraceContext, rec.Event.TraceContext)
	require.JSONEq(t, string(e.Data), string(rec.Event.Data))
	require.Equal(t, record.Headers{EventID: e.EventID.String(), CorrelationID: "corr", CausationID: "cause", TraceContext: e.TraceContext}, rec.Headers)
	require.Equal(t, msg.Topic, rec.Topic)
}

func TestDecodeRejectsWhatCannotBePlaced(t *testing.T) {
	id := uuid.NewString()
	seq := &sarama.RecordHeader{Key: []byte(record.HeaderSequence), Value: []byte("4")}

	_, err := record.Decode(&sarama.ConsumerMessage{Key: []byte("not-a-uuid"), Headers: []*sarama.RecordHeader{seq}})
	require.ErrorContains(t, err, "not an aggregate id")
	_, err = record.Decode(&sarama.ConsumerMessage{Key: []byte(id)})
	require.ErrorContains(t, err, "no sequence header")
	_, err = record.Decode(&sarama.ConsumerMessage{Key: []byte(id), Headers: []*sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte("-1")}}})
	require.ErrorContains(t, err, "bad sequence header")

	// Placeable but unreadable: event_store has the event, so the record
	// is not an error; the projector reads the event from the store instead.
	rec, err := record.Decode(&sarama.ConsumerMessage{Key: []byte(id), Value: []byte(`{"not":"an envelope"`), Headers: []*sarama.RecordHeader{seq}})
	require.NoError(t, err)
	require.Equal(t, int64(4), rec.Sequence)
	require.Error(t, rec.Err)
}

// TestLocate places a record by its key and sequence header alone (moved
// from pkg/accounting, which locates records with it).
func TestLocate(t *testing.T) {
	id := uuid.New()
	msg := &sarama.ConsumerMessage{Key: []byte(id.String()), Headers: []*sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte("7")}}}
	got, seq, err := record.Locate(msg)
	require.NoError(t, err)
	require.Equal(t, gocql.UUID(id), got)
	require.EqualValues(t, 7, seq)
	for _, bad := range []*sarama.ConsumerMessage{
		{Key: []byte("nope")},
		{Key: []byte(strings.ToUpper(id.String())), Headers: msg.Headers},
		{Key: []byte(strings.ReplaceAll(id.String(), "-", "")), Headers: msg.Headers},
		{Key: []byte(id.String())},
		{Key: []byte(id.String()), Headers: []*sarama.RecordHeader{{Key: []byte(record.HeaderSequence), Value: []byte("0")}}},
	} {
		_, _, err := record.Locate(bad)
		require.Error(t, err)
	}
}

// TestDecodeRejectsAPayloadOfAnotherType: an envelope whose payload is
// not the contract of its event type is unreadable (Err), so that what
// Decode accepts can be encoded again and folded by a view.
func TestDecodeRejectsAPayloadOfAnotherType(t *testing.T) {
	e := events()[2] // OrderShipped
	msg, err := record.Encode(e, "p")
	require.NoError(t, err)
	consumed := recordtest.Consumed(msg, 0, 0)
	consumed.Value = []byte(replaceOnce(t, string(consumed.Value), `"eventType":"OrderShipped"`, `"eventType":"OrderDelivered"`))
	rec, err := record.Decode(consumed)
	require.NoError(t, err)
	require.ErrorContains(t, rec.Err, "OrderShipped")

	// A trace context without a traceparent is no trace context: Encode
	// writes none, so Decode must read none.
	e.TraceContext = nil
	msg, err = record.Encode(e, "p")
	require.NoError(t, err)
	consumed = recordtest.Consumed(msg, 0, 0)
	consumed.Value = []byte(replaceOnce(t, string(consumed.Value), `"payload"`, `"traceContext":{"tracestate":"a=b"},"payload"`))
	rec, err = record.Decode(consumed)
	require.NoError(t, err)
	require.NoError(t, rec.Err)
	require.Nil(t, rec.Event.TraceContext)
}

func replaceOnce(t *testing.T, s, old, repl string) string {
	t.Helper()
	require.Contains(t, s, old)
	return strings.Replace(s, old, repl, 1)
}

// TestRoundTrip: every event encodes to a record that decodes to the same
// event, with the headers naming it.
func TestRoundTrip(t *testing.T) {
	for _, e := range events() {
		t.Run(e.Type, func(t *testing.T) {
			msg, err := record.Encode(e, "rt")
			require.NoError(t, err)
			require.Equal(t, record.TopicOf("rt", e.AggregateType), msg.Topic)
			require.Equal(t, e.OccurredAt, msg.Timestamp)
			rec, err := record.Decode(recordtest.Consumed(msg, 1, 9))
			require.NoError(t, err)
			require.NoError(t, rec.Err)
			requireSameEvent(t, e, rec.Event)
			require.Equal(t, e.AggregateID, rec.AggregateID)
			require.Equal(t, e.Sequence, rec.Sequence)
			require.Equal(t, record.Headers{EventID: e.EventID.String(), CorrelationID: e.CorrelationID, CausationID: e.CausationID, TraceContext: e.TraceContext}, rec.Headers)
		})
	}
}

// requireSameEvent compares events with the data as JSON (protojson does
// not promise stable bytes).
func requireSameEvent(t *testing.T, want, got eventstore.Event) {
	t.Helper()
	require.JSONEq(t, string(want.Data), string(got.Data))
	want.Data, got.Data = nil, nil
	require.True(t, want.OccurredAt.Equal(got.OccurredAt), "occurred_at %s, want %s", got.OccurredAt, want.OccurredAt)
	want.OccurredAt, got.OccurredAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func TestEncodeRefusesAnUnreadablePayload(t *testing.T) {
	e := events()[0]
	e.Data = []byte(`{"items":`)
	_, err := record.Encode(e, "p")
	require.Error(t, err)
	e = events()[0]
	e.Type = "OrderExploded"
	_, err = record.Encode(e, "p")
	require.Error(t, err)
}

func TestSetHeader(t *testing.T) {
	msg := &sarama.ProducerMessage{Headers: []sarama.RecordHeader{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}}
	record.SetHeader(msg, "a", "3")
	require.Equal(t, []sarama.RecordHeader{{Key: []byte("b"), Value: []byte("2")}, {Key: []byte("a"), Value: []byte("3")}}, msg.Headers)
	record.SetHeader(msg, "b", "")
	require.Equal(t, []sarama.RecordHeader{{Key: []byte("a"), Value: []byte("3")}}, msg.Headers)
}

// TestPartitionIsSaramasHash: Partition is what the producer's partitioner
// picks, spread over the partitions, stable per key.
func TestPartitionIsSaramasHash(t *testing.T) {
	sc := sarama.NewConfig()
	record.ProducerConfig(sc)
	seen := map[int32]bool{}
	for range 200 {
		key := uuid.NewString()
		p, err := record.Partition(key, 12)
		require.NoError(t, err)
		want, err := sc.Producer.Partitioner("any").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, 12)
		require.NoError(t, err)
		require.Equal(t, want, p)
		seen[p] = true
	}
	require.Len(t, seen, 12)
	// A fixed key keeps its partition across releases: records already
	// on a topic must stay in order with the ones published after an
	// upgrade.
	p, err := record.Partition("0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", 12)
	require.NoError(t, err)
	require.Equal(t, int32(fixedPartition), p)
	_, err = record.Partition("k", 0)
	require.Error(t, err)
}

func TestProducerAndConsumerSettings(t *testing.T) {
	sc := sarama.NewConfig()
	record.ProducerConfig(sc)
	require.True(t, sc.Producer.Idempotent)
	require.Equal(t, sarama.WaitForAll, sc.Producer.RequiredAcks)
	require.Equal(t, 1, sc.Net.MaxOpenRequests)
	require.True(t, sc.Producer.Return.Successes)
	sc.Version = sarama.V2_1_0_0
	require.NoError(t, sc.Validate())

	sc = sarama.NewConfig()
	record.ConsumerConfig(sc)
	require.Equal(t, sarama.OffsetOldest, sc.Consumer.Offsets.Initial)
	require.True(t, sc.Consumer.Offsets.AutoCommit.Enable)
	require.True(t, sc.Consumer.Return.Errors)
	require.NoError(t, sc.Validate())
}

// An idle consumer's fetch waits a second at the broker, yet returns at
// the first byte; what queues behind it on the broker connection (the
// readiness check's metadata request, heartbeats, offset commits) still
// answers well within its own deadline.
func TestConsumersWaitLongAndReturnAtTheFirstRecord(t *testing.T) {
	for name, set := range map[string]func(*sarama.Config){"records": record.ConsumerConfig, "hints": record.HintConsumerConfig} {
		sc, err := kafka.DefaultConfig().Sarama("test")
		require.NoError(t, err)
		set(sc)
		require.NoError(t, sc.Validate(), name)
		require.Equal(t, 500*time.Millisecond, sc.Consumer.MaxWaitTime, name)
		require.Equal(t, int32(1), sc.Consumer.Fetch.Min, name)
		require.LessOrEqual(t, 4*sc.Consumer.MaxWaitTime, sc.Net.ReadTimeout, name)
		require.LessOrEqual(t, 3*sc.Consumer.MaxWaitTime, sc.Consumer.Group.Heartbeat.Interval, name)
		require.LessOrEqual(t, 10*sc.Consumer.MaxWaitTime, sc.Consumer.Group.Session.Timeout, name)
		require.LessOrEqual(t, 4*sc.Consumer.MaxWaitTime, admin.DefaultConfig(":0").CheckTimeout, name)
	}
}

// fakeAdmin is a TopicAdmin over a map.
type fakeAdmin struct {
	topics  map[string]sarama.TopicDetail
	created []string
	listErr error
	failOn  string
}

func (a *fakeAdmin) ListTopics() (map[string]sarama.TopicDetail, error) { return a.topics, a.listErr }

func (a *fakeAdmin) CreateTopic(topic string, d *sarama.TopicDetail, _ bool) error {
	if topic == a.failOn {
		return sarama.ErrPolicyViolation
	}
	if _, ok := a.topics[topic]; ok {
		return sarama.ErrTopicAlreadyExists
	}
	a.topics[topic] = *d
	a.created = append(a.created, topic)
	return nil
}

func TestEnsureTopics(t *testing.T) {
	a := &fakeAdmin{topics: map[string]sarama.TopicDetail{"p.orders.v1": {NumPartitions: 3}}}
	require.NoError(t, record.EnsureTopics(a, "p", 12, 1))
	require.Equal(t, []string{"p.customers.v1"}, a.created)
	require.Equal(t, sarama.TopicDetail{NumPartitions: 12, ReplicationFactor: 1}, a.topics["p.customers.v1"])
	require.Equal(t, int32(3), a.topics["p.orders.v1"].NumPartitions, "an existing topic is left as it is")
	require.NoError(t, record.EnsureTopics(a, "p", 12, 1))
	require.Len(t, a.created, 1)

	a = &fakeAdmin{topics: map[string]sarama.TopicDetail{}, failOn: "q.customers.v1"}
	require.ErrorIs(t, record.EnsureTopics(a, "q", 1, 1), sarama.ErrPolicyViolation)
	a = &fakeAdmin{listErr: errors.New("down")}
	require.ErrorContains(t, record.EnsureTopics(a, "q", 1, 1), "listing topics")
}

// fixedPartition is where sarama's hash partitioner puts the key
// 0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11 among 12 partitions.
const fixedPartition = 11

// section is a configuration section that embeds Topics, as relay.Config
// and projector.Config do.
type section struct {
	record.Topics `mapstructure:",squash"`
	Other         int `mapstructure:"other"`
}

type serviceConfig struct {
	Relay section `mapstructure:"relay"`
}

func (c *serviceConfig) Validate() error { return config.Nest("relay", c.Relay.Topics.Validate()) }

// TestTopicsKeepTheirKey: embedded, the prefix keeps the key it had in each
// section (relay.topic_prefix), from a flag and from the environment, and a
// bad one is reported under it.
func TestTopicsKeepTheirKey(t *testing.T) {
	newCfg := func() *serviceConfig { return &serviceConfig{Relay: section{Topics: record.DefaultTopics()}} }
	require.Contains(t, config.Keys(newCfg()), "relay.topic_prefix")

	cfg := newCfg()
	require.NoError(t, config.Load("svc", nil, cfg))
	require.Equal(t, "orderstream.orders.v1", cfg.Relay.Topic("order"))

	cfg = newCfg()
	require.NoError(t, config.Load("svc", []string{"--relay.topic_prefix=flagged"}, cfg))
	require.Equal(t, "flagged", cfg.Relay.TopicPrefix)

	t.Setenv("ORDERSTREAM_RELAY_TOPIC_PREFIX", "from-env")
	cfg = newCfg()
	require.NoError(t, config.Load("svc", nil, cfg))
	require.Equal(t, "from-env", cfg.Relay.TopicPrefix)

	t.Setenv("ORDERSTREAM_RELAY_TOPIC_PREFIX", "")
	cfg = newCfg()
	require.ErrorContains(t, config.Load("svc", []string{"--relay.topic_prefix="}, cfg), `"relay.topic_prefix"`)
}
