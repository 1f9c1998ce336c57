package cdcsource

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The progress manager against the relay_progress table of the local
// Cassandra: the same CQL runs on ScyllaDB, which only adds the CDC log.
func TestProgressTableRoundTrip(t *testing.T) {
	session := stacktest.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newProgressTable(session, stacktest.SharedKeyspace, stacktest.UniqueName("cdc_"))
	other := newProgressTable(session, stacktest.SharedKeyspace, stacktest.UniqueName("cdc_"))

	// A source that never ran has nothing saved.
	gen, err := p.GetCurrentGeneration(ctx)
	require.NoError(t, err)
	require.True(t, gen.IsZero())
	start, err := p.GetApplicationReadStartTime(ctx)
	require.NoError(t, err)
	require.True(t, start.IsZero())

	// The start time is kept to the millisecond (a timeuuid at its start)
	// and is not mistaken for a generation.
	first := time.Date(2026, 4, 30, 10, 0, 0, 123_000_000, time.UTC)
	require.NoError(t, p.SaveApplicationReadStartTime(ctx, first))
	start, err = p.GetApplicationReadStartTime(ctx)
	require.NoError(t, err)
	require.True(t, first.Equal(start), "got %s", start)
	gen, err = p.GetCurrentGeneration(ctx)
	require.NoError(t, err)
	require.True(t, gen.IsZero())

	// The current generation is the latest one started.
	g1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	g2 := g1.Add(36 * time.Hour)
	require.NoError(t, p.StartGeneration(ctx, g1))
	stream := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	at1 := gocql.MinTimeUUID(g1.Add(time.Minute))
	require.NoError(t, p.SaveProgress(ctx, g1, "ks.event_store", stream, progressAt(at1)))
	require.NoError(t, p.StartGeneration(ctx, g2))
	gen, err = p.GetCurrentGeneration(ctx)
	require.NoError(t, err)
	require.True(t, g2.Equal(gen), "got %s", gen)

	// Progress is per generation and stream, and the last save wins.
	got, err := p.GetProgress(ctx, g1, "ks.event_store", stream)
	require.NoError(t, err)
	require.Equal(t, at1, got.LastProcessedRecordTime)
	got, err = p.GetProgress(ctx, g2, "ks.event_store", stream)
	require.NoError(t, err)
	require.Equal(t, gocql.UUID{}, got.LastProcessedRecordTime)
	at2 := gocql.MinTimeUUID(g2.Add(time.Minute))
	at3 := gocql.MinTimeUUID(g2.Add(2 * time.Minute))
	require.NoError(t, p.SaveProgress(ctx, g2, "ks.event_store", stream, progressAt(at2)))
	require.NoError(t, p.SaveProgress(ctx, g2, "ks.event_store", stream, progressAt(at3)))
	got, err = p.GetProgress(ctx, g2, "ks.event_store", stream)
	require.NoError(t, err)
	require.Equal(t, at3, got.LastProcessedRecordTime)

	// Sources share nothing.
	gen, err = other.GetCurrentGeneration(ctx)
	require.NoError(t, err)
	require.True(t, gen.IsZero())
	got, err = other.GetProgress(ctx, g2, "ks.event_store", stream)
	require.NoError(t, err)
	require.Equal(t, gocql.UUID{}, got.LastProcessedRecordTime)
}

func progressAt(u gocql.UUID) scyllacdc.Progress {
	return scyllacdc.Progress{LastProcessedRecordTime: u}
}

// On a CQL database without ScyllaDB CDC (the local Cassandra) Run fails at
// once with an error, so that a relay configured with the wrong source is
// restarted and reported rather than silently idle.
func TestRunFailsWithoutScyllaCDC(t *testing.T) {
	session := stacktest.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flavour, err := cql.DetectFlavour(ctx, session)
	require.NoError(t, err)
	if flavour == cql.ScyllaDB {
		t.Skip("the database has ScyllaDB CDC")
	}
	src, err := New(session, stacktest.SharedKeyspace, stacktest.UniqueName("cdc_"), DefaultConfig(),
		func(context.Context, map[string]any, error) error { return nil },
		zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)

	err = src.Run(ctx, func(context.Context, gocql.UUID, func()) error { return nil })

	require.Error(t, err)
	require.NoError(t, ctx.Err(), "Run must fail, not wait for the deadline")
}
