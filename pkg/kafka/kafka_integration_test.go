package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Connect reaches the local broker and Ping finds its controller. (The
// per-key order of an idempotent producer's records, read back by a
// consumer group once each, is the record contract's: pkg/record's
// TestBrokerContract checks it with the relay's and the projectors'
// settings.)
func TestConnectAndPing(t *testing.T) {
	cfg := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := cfg.Sarama("it-admin")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, cfg, sc)
	require.NoError(t, err)
	defer client.Close()
	require.NoError(t, kafka.Ping(ctx, client))
}
