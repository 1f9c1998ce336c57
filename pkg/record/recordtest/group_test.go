package recordtest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/record/recordtest"
)

// collector is a group handler that keeps what it receives and marks
// every record, except those of the key skip, which end its claim.
type collector struct {
	mu       sync.Mutex
	got      map[string][]string // key → values, in delivery order
	setups   int
	cleanups int
	skip     string
	fail     error
}

func (c *collector) Setup(sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setups++
	return nil
}

func (c *collector) Cleanup(sarama.ConsumerGroupSession) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups++
	return nil
}

func (c *collector) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		c.mu.Lock()
		skip, fail := c.skip, c.fail
		c.mu.Unlock()
		if string(msg.Key) == skip {
			return fail
		}
		c.mu.Lock()
		c.got[string(msg.Key)] = append(c.got[string(msg.Key)], string(msg.Value))
		c.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.got {
		n += len(v)
	}
	return n
}

func TestConsumerGroupDeliversInOrderAndResumesFromCommits(t *testing.T) {
	b := recordtest.NewBroker(4)
	p := b.Producer()
	for _, v := range []string{"1", "2", "3"} {
		for _, k := range []string{"a", "b", "c"} {
			_, _, err := p.SendMessage(msg("t", k, v))
			require.NoError(t, err)
		}
	}
	g := b.ConsumerGroup("g")
	var _ sarama.ConsumerGroup = g
	h := &collector{got: map[string][]string{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Consume(ctx, []string{"t"}, h) }()
	require.Eventually(t, func() bool { return h.count() == 9 }, 5*time.Second, time.Millisecond)

	// Records sent while consuming arrive too.
	_, _, err := p.SendMessage(msg("t", "a", "4"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.count() == 10 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"1", "2", "3", "4"}, h.got["a"])
	require.Equal(t, []string{"1", "2", "3"}, h.got["b"])

	g.Rebalance()
	require.NoError(t, <-done)
	require.Equal(t, 1, h.setups)
	require.Equal(t, 1, h.cleanups)
	require.Equal(t, int32(1), g.Generation())

	// The next session starts after the committed offsets: nothing again.
	// A claim that fails ends the session and its record is not marked.
	h.skip, h.fail = "b", errors.New("cannot apply")
	_, _, err = p.SendMessage(msg("t", "b", "4"))
	require.NoError(t, err)
	require.NoError(t, g.Consume(ctx, []string{"t"}, h), "a failing claim ends the session, not Consume")
	require.Equal(t, int32(2), g.Generation())
	require.Equal(t, 10, h.count())
	require.EqualError(t, <-g.Errors(), "cannot apply")

	// Healed, the unmarked record is delivered again.
	h.mu.Lock()
	h.skip = ""
	h.mu.Unlock()
	go func() { done <- g.Consume(ctx, []string{"t"}, h) }()
	require.Eventually(t, func() bool { return h.count() == 11 }, 5*time.Second, time.Millisecond)
	require.Equal(t, []string{"1", "2", "3", "4"}, h.got["b"])

	require.NoError(t, g.Close())
	require.NoError(t, <-done)
	require.ErrorIs(t, g.Consume(ctx, []string{"t"}, h), sarama.ErrClosedConsumerGroup)
	_, open := <-g.Errors()
	require.False(t, open)
}
