package cql

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokenRangesCoverTheRing(t *testing.T) {
	for _, n := range []int{1, 2, 3, 16, 1000} {
		rs := TokenRanges(n)
		require.Len(t, rs, n)
		require.Equal(t, int64(-1<<63), rs[0][0])
		require.Equal(t, int64(1<<63-1), rs[len(rs)-1][1])
		for i := 1; i < len(rs); i++ {
			require.Equal(t, rs[i-1][1]+1, rs[i][0], "ranges %d and %d are contiguous", i-1, i)
			require.LessOrEqual(t, rs[i][0], rs[i][1])
		}
	}
}
