package benchkit

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/record"
)

// Arrivals reads every partition of a topic from its end and matches
// arriving records (by key and sequence header) with the commits a bench
// expects, measuring commit → arrival.
type Arrivals struct {
	c       sarama.Consumer
	mu      sync.Mutex
	expects map[string]time.Time // "aggregate id/sequence" → commit returned
	lat     []time.Duration
	early   map[string]time.Time // records that arrived before their commit was noted
	pcs     []sarama.PartitionConsumer
	wg      sync.WaitGroup
}

// StartArrivals starts reading topic from its end.
func StartArrivals(kc kafka.Config, topic string) (*Arrivals, error) {
	sc, err := kc.Sarama("relaybench-consumer")
	if err != nil {
		return nil, err
	}
	sc.Consumer.Fetch.Default = 1 << 20
	sc.Consumer.MaxWaitTime = 10 * time.Millisecond
	c, err := sarama.NewConsumer(kc.Brokers, sc)
	if err != nil {
		return nil, err
	}
	parts, err := c.Partitions(topic)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	out := &Arrivals{c: c, expects: map[string]time.Time{}, early: map[string]time.Time{}}
	for _, part := range parts {
		pc, err := c.ConsumePartition(topic, part, sarama.OffsetNewest)
		if err != nil {
			out.Close()
			return nil, err
		}
		out.pcs = append(out.pcs, pc)
		out.wg.Go(func() {
			for msg := range pc.Messages() {
				now := time.Now()
				id, seq, err := record.Locate(msg)
				if err != nil {
					continue // not a relay record: no commit expects it
				}
				out.arrived(id.String()+"/"+strconv.FormatInt(seq, 10), now)
			}
		})
	}
	return out, nil
}

func (c *Arrivals) arrived(key string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if committed, ok := c.expects[key]; ok {
		c.lat = append(c.lat, at.Sub(committed))
		delete(c.expects, key)
		return
	}
	c.early[key] = at
}

// Expect notes a commit of key at seq, returned at committed.
func (c *Arrivals) Expect(key string, seq int64, committed time.Time) {
	key += "/" + strconv.FormatInt(seq, 10)
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.early[key]; ok {
		// The record arrived before the committer noted the time: the
		// latency is at most the time it took to note it; count zero.
		c.lat = append(c.lat, max(0, at.Sub(committed)))
		delete(c.early, key)
		return
	}
	c.expects[key] = committed
}

// Wait gives the last records up to timeout to arrive and returns the
// sorted latencies and how many commits never arrived.
func (c *Arrivals) Wait(timeout time.Duration) ([]time.Duration, int) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.expects)
		c.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lat := slices.Clone(c.lat)
	slices.Sort(lat)
	return lat, len(c.expects)
}

// Close stops reading.
func (c *Arrivals) Close() {
	for _, pc := range c.pcs {
		pc.AsyncClose()
	}
	c.wg.Wait()
	_ = c.c.Close()
}
