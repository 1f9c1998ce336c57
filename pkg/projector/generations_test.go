package projector_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// generationsContract is what every GenerationStore does: the CQL one and
// its in-memory twin.
func generationsContract(t *testing.T, gens projector.GenerationStore) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	const view = "contract-view"

	g, err := gens.Load(ctx, view)
	require.NoError(t, err)
	require.Equal(t, 1, g.Active, "no row: generation 1")
	require.Equal(t, 1, g.Last)
	require.Zero(t, g.Building)

	g, err = gens.Begin(ctx, view, g, "a", 1234, 8, now)
	require.NoError(t, err)
	require.Equal(t, 2, g.Building)
	require.Equal(t, 2, g.Last)
	require.Equal(t, 1, g.Active)
	require.Equal(t, "a", g.Owner)
	require.Equal(t, int64(1234), g.WriteBase)
	require.Equal(t, 8, g.RangesTotal)
	require.True(t, g.Heartbeat.Equal(now))
	_, err = gens.Begin(ctx, view, projector.Generations{Active: 1, Last: 1}, "b", 1, 8, now)
	require.ErrorIs(t, err, projector.ErrGenerationConflict, "one rebuild at a time")

	ok, err := gens.Heartbeat(ctx, view, 2, "a", now.Add(time.Second))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = gens.Heartbeat(ctx, view, 2, "b", now)
	require.NoError(t, err)
	require.False(t, ok, "not the owner")
	ok, err = gens.TakeOver(ctx, view, 2, "a", now, "b", now)
	require.NoError(t, err)
	require.False(t, ok, "the heartbeat moved on")
	ok, err = gens.TakeOver(ctx, view, 2, "a", now.Add(time.Second), "b", now.Add(2*time.Second))
	require.NoError(t, err)
	require.True(t, ok)

	require.NoError(t, gens.RangeDone(ctx, view, 2, 3, projector.RangeProgress{Aggregates: 5, Events: 9}))
	done, err := gens.RangesDone(ctx, view, 2)
	require.NoError(t, err)
	require.Equal(t, map[int]projector.RangeProgress{3: {Aggregates: 5, Events: 9}}, done)

	ok, err = gens.Switch(ctx, view, 1, 3, now)
	require.NoError(t, err)
	require.False(t, ok, "3 is not building")
	ok, err = gens.Switch(ctx, view, 1, 2, now.Add(time.Hour))
	require.NoError(t, err)
	require.True(t, ok)
	g, err = gens.Load(ctx, view)
	require.NoError(t, err)
	require.Equal(t, 2, g.Active)
	require.Zero(t, g.Building)
	require.True(t, g.Retiring[1].Equal(now.Add(time.Hour)))
	require.True(t, g.Readable(1, now))
	require.False(t, g.Readable(1, now.Add(2*time.Hour)))

	g, err = gens.Begin(ctx, view, g, "a", 1, 8, now)
	require.NoError(t, err)
	require.Equal(t, 3, g.Building)
	ok, err = gens.Cancel(ctx, view, 3, now)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = gens.Cancel(ctx, view, 3, now)
	require.NoError(t, err)
	require.False(t, ok, "nothing to cancel")
	require.NoError(t, gens.Dropped(ctx, view, 1))
	g, err = gens.Load(ctx, view)
	require.NoError(t, err)
	require.Equal(t, 2, g.Active)
	require.Equal(t, 3, g.Last, "a generation's name is not reused")
	require.NotContains(t, g.Retiring, 1)
	require.Contains(t, g.Retiring, 3)
}

func TestMemoryGenerationsContract(t *testing.T) {
	generationsContract(t, projector.NewMemoryGenerations())
}

func TestGenerationsContract(t *testing.T) {
	session, _ := stacktest.PrivateKeyspace(t, "gens_")
	generationsContract(t, projector.NewGenerationStore(session))
	all, err := projector.ReadGenerations(context.Background(), session)
	require.NoError(t, err)
	require.Equal(t, 2, all["contract-view"].Active)
}
