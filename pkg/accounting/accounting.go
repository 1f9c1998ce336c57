// Package accounting checks, after a run, that nothing was lost,
// duplicated or reordered anywhere between a command and its effects:
//
//   - the commands: every version a client saw acknowledged is in
//     event_store, and no aggregate has more events than its acknowledged
//     commands made (a retried command that committed twice would);
//   - the topics: read from the beginning by a real consumer, every event
//     of event_store is on its aggregate type's topic, once per key in
//     sequence order, on one partition per key (re-sent copies of a record
//     are counted as duplicated records: consumers drop them by sequence,
//     so they are not duplicated effects);
//   - the read models: every row of the four tables equals the fold of
//     event_store (readmodeltest.Check): a missing row is a lost effect,
//     an extra or wrong row a duplicated or misapplied one.
//
// It reads whole tables and topics, which suits the private keyspaces and
// topics of tests and benchmark runs, not a production cluster.
package accounting

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/record"
)

// Acked is a command a client saw acknowledged: its aggregate and the
// version the API answered with.
type Acked struct {
	AggregateID gocql.UUID
	Version     int64
}

// EventStore is what a check reads of the event store: every aggregate's
// head and its events. *eventstore.Store and its in-memory twin
// (eventstore/memstore) satisfy it.
type EventStore interface {
	Heads(ctx context.Context, fn func(eventstore.Head) error) error
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error
}

// Input is what a check reads.
type Input struct {
	// Session reads the read-model tables, Store the event store.
	Session *gocql.Session
	Store   EventStore
	// Kafka and TopicPrefix locate the topics; an empty Brokers list
	// skips the topics.
	Kafka       kafka.Config
	TopicPrefix string
	// Acked, when set, are the commands to account for; aggregates not
	// among them (created by others) are checked only downstream.
	Acked []Acked
}

// Report counts what a check found; Zero tells whether it is clean.
type Report struct {
	Aggregates int // aggregates in event_store
	Events     int // events in event_store

	// Commands.
	AckedCommands    int // acknowledged commands accounted for
	LostCommands     int // acknowledged versions missing from event_store
	DuplicatedWrites int // events beyond an aggregate's highest acknowledged version

	// Topics.
	Records           int // records read
	LostRecords       int // events of event_store never published
	DuplicatedRecords int // re-sent copies of a record already read
	OutOfOrder        int // records whose sequence came after a higher one of the same key
	SplitKeys         int // keys found on more than one partition
	Strays            int // records of events event_store does not have

	// Read models.
	ReadModels readmodeltest.Report
	LostRows   int // expected rows absent
	ExtraRows  int // rows no event calls for
	WrongRows  int // rows with a wrong column (a duplicated, missed or misapplied effect)

	// Examples has up to MaxExamples lines naming what is wrong.
	Examples []string
}

// MaxExamples bounds Report.Examples.
const MaxExamples = 20

// Zero reports whether nothing was lost, duplicated or reordered.
// Duplicated records on a topic are allowed: the relay publishes at least
// once, and consumers drop copies by (key, sequence).
func (r Report) Zero() bool {
	return r.LostCommands == 0 && r.DuplicatedWrites == 0 && r.LostRecords == 0 && r.OutOfOrder == 0 &&
		r.SplitKeys == 0 && r.Strays == 0 && r.LostRows == 0 && r.ExtraRows == 0 && r.WrongRows == 0
}

// String is the report as a few lines.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "event_store: %d aggregates, %d events\n", r.Aggregates, r.Events)
	fmt.Fprintf(&b, "commands:    %d acknowledged, %d lost, %d duplicated writes\n", r.AckedCommands, r.LostCommands, r.DuplicatedWrites)
	fmt.Fprintf(&b, "topics:      %d records, %d lost, %d duplicated records (allowed), %d out of order, %d split keys, %d strays\n",
		r.Records, r.LostRecords, r.DuplicatedRecords, r.OutOfOrder, r.SplitKeys, r.Strays)
	fmt.Fprintf(&b, "read models: %d lost rows, %d extra rows, %d wrong rows", r.LostRows, r.ExtraRows, r.WrongRows)
	for _, e := range r.Examples {
		b.WriteString("\n  ")
		b.WriteString(e)
	}
	return b.String()
}

func (r *Report) example(format string, args ...any) {
	if len(r.Examples) < MaxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// Check accounts for every event of the keyspace.
func Check(ctx context.Context, in Input) (Report, error) {
	var r Report
	heads, err := readHeads(ctx, in.Store)
	if err != nil {
		return r, err
	}
	r.Aggregates = len(heads)
	for _, h := range heads {
		r.Events += int(h.current)
	}
	checkCommands(&r, heads, in.Acked)
	if len(in.Kafka.Brokers) > 0 {
		if err := checkTopics(ctx, &r, heads, in.Kafka, in.TopicPrefix); err != nil {
			return r, err
		}
	}
	rm, err := readmodeltest.Check(ctx, in.Session, in.Store)
	if err != nil {
		return r, fmt.Errorf("checking the read models: %w", err)
	}
	r.ReadModels = rm
	for _, c := range rm.Tables {
		r.LostRows += c.Missing
		r.ExtraRows += c.Extra
		r.WrongRows += c.Wrong
	}
	for _, m := range rm.Mismatches {
		r.example("read model: %s", m)
	}
	return r, nil
}

// head is an aggregate's type and last sequence in event_store.
type head struct {
	typ     string
	current int64
}

func readHeads(ctx context.Context, store EventStore) (map[gocql.UUID]head, error) {
	heads := map[gocql.UUID]head{}
	if err := store.Heads(ctx, func(h eventstore.Head) error {
		heads[h.AggregateID] = head{typ: h.AggregateType, current: h.Current}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("reading the event store: %w", err)
	}
	return heads, nil
}

func checkCommands(r *Report, heads map[gocql.UUID]head, acked []Acked) {
	highest := map[gocql.UUID]int64{}
	for _, a := range acked {
		highest[a.AggregateID] = max(highest[a.AggregateID], a.Version)
	}
	r.AckedCommands = len(acked)
	for _, a := range acked {
		if heads[a.AggregateID].current < a.Version {
			r.LostCommands++
			r.example("command: %s acknowledged at version %d, event_store is at %d", a.AggregateID, a.Version, heads[a.AggregateID].current)
		}
	}
	for id, v := range highest {
		if extra := heads[id].current - v; extra > 0 {
			r.DuplicatedWrites += int(extra)
			r.example("command: %s has %d events beyond its highest acknowledged version %d", id, extra, v)
		}
	}
}

// keyState follows one key through a topic.
type keyState struct {
	partition int32
	seen      map[int64]bool
	highest   int64
}

func checkTopics(ctx context.Context, r *Report, heads map[gocql.UUID]head, kc kafka.Config, prefix string) error {
	sc, err := kc.Sarama("orderstream-accounting")
	if err != nil {
		return err
	}
	client, err := kafka.Connect(ctx, kc, sc)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, typ := range []string{order.AggregateType, customer.AggregateType} {
		topic := record.TopicOf(prefix, typ)
		keys, records, err := readTopic(ctx, client, topic)
		if err != nil {
			return err
		}
		r.Records += records
		for id, k := range keys {
			r.DuplicatedRecords += k.dups
			r.OutOfOrder += k.outOfOrder
			if k.split {
				r.SplitKeys++
				r.example("topic %s: key %s is on more than one partition", topic, id)
			}
			if k.outOfOrder > 0 {
				r.example("topic %s: key %s has %d records out of order", topic, id, k.outOfOrder)
			}
			h, ok := heads[id]
			for seq := range k.seen {
				if !ok || h.typ != typ || seq > h.current {
					r.Strays++
					r.example("topic %s: record %s/%d has no event in event_store", topic, id, seq)
				}
			}
		}
		for id, h := range heads {
			if h.typ != typ {
				continue
			}
			k := keys[id]
			for seq := int64(1); seq <= h.current; seq++ {
				if k == nil || !k.seen[seq] {
					r.LostRecords++
					r.example("topic %s: event %s/%d was never published", topic, id, seq)
				}
			}
		}
	}
	return nil
}

// keyCount is what readTopic found for one key.
type keyCount struct {
	seen       map[int64]bool
	dups       int
	outOfOrder int
	split      bool
}

// readTopic reads every partition of topic from the oldest offset to the
// high-water mark it has when the read starts.
func readTopic(ctx context.Context, client sarama.Client, topic string) (map[gocql.UUID]*keyCount, int, error) {
	if err := client.RefreshMetadata(topic); err != nil {
		return nil, 0, fmt.Errorf("reading the partitions of %s: %w", topic, err)
	}
	partitions, err := client.Partitions(topic)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the partitions of %s: %w", topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, 0, err
	}
	defer consumer.Close()

	var (
		mu      sync.Mutex
		keys    = map[gocql.UUID]*keyCount{}
		owner   = map[gocql.UUID]int32{}
		records int
		wg      sync.WaitGroup
		errs    = make(chan error, len(partitions))
	)
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the end of %s/%d: %w", topic, p, err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the start of %s/%d: %w", topic, p, err)
		}
		if end <= start {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			return nil, 0, fmt.Errorf("consuming %s/%d: %w", topic, p, err)
		}
		wg.Go(func() {
			defer pc.Close()
			local := map[gocql.UUID]*keyState{}
			n := 0
			for {
				select {
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				case err := <-pc.Errors():
					errs <- fmt.Errorf("consuming %s/%d: %w", topic, p, err)
					return
				case msg := <-pc.Messages():
					n++
					id, seq, err := record.Locate(msg)
					if err != nil {
						errs <- fmt.Errorf("%s/%d@%d: %w", topic, p, msg.Offset, err)
						return
					}
					k := local[id]
					if k == nil {
						k = &keyState{partition: p, seen: map[int64]bool{}}
						local[id] = k
					}
					mu.Lock()
					kc := keys[id]
					if kc == nil {
						kc = &keyCount{seen: map[int64]bool{}}
						keys[id] = kc
					}
					if o, ok := owner[id]; ok && o != p {
						kc.split = true
					}
					owner[id] = p
					switch {
					case k.seen[seq]:
						kc.dups++
					case seq < k.highest:
						kc.outOfOrder++
					}
					k.seen[seq] = true
					kc.seen[seq] = true
					k.highest = max(k.highest, seq)
					mu.Unlock()
					if msg.Offset >= end-1 {
						mu.Lock()
						records += n
						mu.Unlock()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return nil, 0, err
	}
	return keys, records, nil
}
