package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
)

// recordWatch measures commit→record: it reads every partition of the
// aggregate topics from their ends as it starts, and for each record of
// an event that occurred after it started takes the time from the event's
// occurred_at (stamped by the command-service as it decides, just before
// the commit) to the record's arrival here. It is a plain consumer, no
// group: it commits nothing and moves no projector's offsets.
type recordWatch struct {
	consumer sarama.Consumer
	start    time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	samples []time.Duration
	bad     int
	last    time.Time // arrival of the latest record
}

// watchRecords starts a watch on the topics under prefix.
func watchRecords(brokers []string, prefix string) (*recordWatch, error) {
	kc := kafka.DefaultConfig()
	kc.Brokers = brokers
	sc, err := kc.Sarama("e2ebench")
	if err != nil {
		return nil, err
	}
	sc.Consumer.Return.Errors = false
	// A fetch returns as soon as one record is there; the wait only bounds
	// an idle fetch.
	sc.Consumer.Fetch.Min = 1
	sc.Consumer.MaxWaitTime = 250 * time.Millisecond
	consumer, err := sarama.NewConsumer(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("connecting to kafka %v: %w", brokers, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &recordWatch{consumer: consumer, start: time.Now(), cancel: cancel}
	for _, topic := range record.TopicsOf(prefix) {
		parts, err := consumer.Partitions(topic)
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
			if err != nil {
				w.stop()
				return nil, fmt.Errorf("consuming %s/%d: %w", topic, p, err)
			}
			w.wg.Add(1)
			go w.read(ctx, pc)
		}
	}
	return w, nil
}

func (w *recordWatch) read(ctx context.Context, pc sarama.PartitionConsumer) {
	defer w.wg.Done()
	defer func() { _ = pc.Close() }()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-pc.Messages():
			if !ok {
				return
			}
			arrived := time.Now()
			rec, err := record.Decode(msg)
			w.mu.Lock()
			w.last = arrived
			switch {
			case err != nil || rec.Err != nil:
				w.bad++
			case !rec.Event.OccurredAt.Before(w.start):
				w.samples = append(w.samples, max(arrived.Sub(rec.Event.OccurredAt), 0))
			}
			w.mu.Unlock()
		}
	}
}

// drain waits until no record has arrived for quiet (the load's last
// commits reach the topics), at most max.
func (w *recordWatch) drain(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		idle := time.Since(w.last)
		w.mu.Unlock()
		if idle >= quiet {
			return
		}
		time.Sleep(quiet - idle)
	}
}

// stop ends the watch and returns the samples, sorted, and the number of
// records it could not decode.
func (w *recordWatch) stop() ([]time.Duration, int) {
	w.cancel()
	w.wg.Wait()
	_ = w.consumer.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	slices.Sort(w.samples)
	return w.samples, w.bad
}
