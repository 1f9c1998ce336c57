package main

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// stubGenerations serves what read returns, counting the reads.
func stubGenerations(t *testing.T, ttl time.Duration, read func() (map[string]projector.Generations, error)) (*generations, *atomic.Int64) {
	t.Helper()
	g, err := newGenerations(nil, ttl, zerolog.Nop(), nil)
	require.NoError(t, err)
	var reads atomic.Int64
	g.load = func(context.Context) (map[string]projector.Generations, error) {
		reads.Add(1)
		return read()
	}
	return g, &reads
}

// The active generation is cached for the ttl, never goes back, and a
// failed re-read goes on with the last read.
func TestGenerationsCacheAndNeverGoBack(t *testing.T) {
	ctx := context.Background()
	var (
		cur  = map[string]projector.Generations{}
		fail error
	)
	g, reads := stubGenerations(t, time.Hour, func() (map[string]projector.Generations, error) {
		out := map[string]projector.Generations{}
		for k, v := range cur {
			out[k] = v
		}
		return out, fail
	})
	gen, err := g.active(ctx, orderView)
	require.NoError(t, err)
	require.Equal(t, readmodel.Generation(1), gen, "no row: generation 1")
	cur[orderView] = projector.Generations{Active: 2, Last: 2}
	gen, _ = g.active(ctx, orderView)
	require.Equal(t, readmodel.Generation(1), gen, "cached")
	require.Equal(t, int64(1), reads.Load())

	g.ttl = 0
	gen, _ = g.active(ctx, orderView)
	require.Equal(t, readmodel.Generation(2), gen, "re-read")
	cur[orderView] = projector.Generations{Active: 1, Last: 2} // a stale replica
	gen, _ = g.active(ctx, orderView)
	require.Equal(t, readmodel.Generation(2), gen, "never back")
	fail = errors.New("unreachable")
	gen, err = g.active(ctx, orderView)
	require.NoError(t, err, "the last read serves")
	require.Equal(t, readmodel.Generation(2), gen)
}

// A page token goes on in its generation while it is active or retiring;
// after that, 410 with a code that says to restart the listing.
func TestPageTokenOfAReplacedGeneration(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	g, _ := stubGenerations(t, time.Hour, func() (map[string]projector.Generations, error) {
		return map[string]projector.Generations{statusOrderView: {Active: 3, Last: 3, Retiring: map[int]time.Time{2: now.Add(time.Hour), 1: now.Add(-time.Minute)}}}, nil
	})
	for _, gen := range []int{3, 2} {
		got, err := g.forToken(ctx, statusOrderView, gen)
		require.NoError(t, err)
		require.Equal(t, readmodel.Generation(gen), got)
	}
	_, err := g.forToken(ctx, statusOrderView, 1)
	var p *httpapi.ProblemError
	require.ErrorAs(t, err, &p)
	require.Equal(t, http.StatusGone, p.Problem.Status)
	require.Equal(t, "query.page_token_expired", p.Problem.Code)
}

// A listing's token carries its generation; a token of the format before
// generations is generation 1's; a token of one format does not pass as
// the other's.
func TestPageTokensCarryTheGeneration(t *testing.T) {
	s := newSigner([]byte("0123456789abcdef0123456789abcdef"))
	tok := s.signAt("scope", 7, []byte("paging-state"))
	gen, pos, err := s.openAt("scope", tok)
	require.NoError(t, err)
	require.Equal(t, 7, gen)
	require.Equal(t, []byte("paging-state"), pos)
	_, _, err = s.openAt("other-scope", tok)
	require.ErrorIs(t, err, errBadToken)
	_, err = s.open("scope", tok)
	require.ErrorIs(t, err, errBadToken, "a listing's token is not a history token")

	old := s.sign("scope", []byte("paging-state"))
	gen, pos, err = s.openAt("scope", old)
	require.NoError(t, err)
	require.Equal(t, 1, gen, "issued before generations")
	require.Equal(t, []byte("paging-state"), pos)
}
