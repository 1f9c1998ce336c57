package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/servicetest"
)

func TestBinary(t *testing.T) {
	// Topics of its own: the shared test keyspace's events stay off the
	// default topics that a local stack's projectors read.
	servicetest.Contract(t, servicetest.Spec{Kafka: true, Env: []string{"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + privateTopics(t)}})
}

// The CDC source needs ScyllaDB: on Apache Cassandra the relay refuses to
// start with that source, saying which one to use; an unknown source is a
// configuration error naming the key.
func TestSourceChoice(t *testing.T) {
	bin := servicetest.Build(t)
	addr := servicetest.FreeAddr(t)
	env := append(servicetest.Env(t, servicetest.Spec{Kafka: true}, addr), "ORDERSTREAM_SOURCE=scylla-cdc")
	p := servicetest.Start(t, bin, env)
	require.Equal(t, 1, p.Wait(60*time.Second), p.Output())
	require.Contains(t, p.Output(), "use source scan")

	p = servicetest.Start(t, bin, nil, "--source=binlog")
	require.Equal(t, 2, p.Wait(20*time.Second), p.Output())
	require.Contains(t, p.Output(), `"source"`)
}

// The event store is configured under eventstore.*, as command-service's
// is: a bad value is a configuration error naming the key.
func TestEventStoreIsConfigurable(t *testing.T) {
	bin := servicetest.Build(t)
	p := servicetest.Start(t, bin, nil, "--eventstore.page_size=3")
	require.Equal(t, 2, p.Wait(20*time.Second), p.Output())
	require.Contains(t, p.Output(), `"eventstore.page_size"`)
}
