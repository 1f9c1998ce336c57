package cql_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func TestDetectFlavourAndPing(t *testing.T) {
	s := stacktest.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, cql.Ping(ctx, s))
	f, err := cql.DetectFlavour(ctx, s)
	require.NoError(t, err)
	require.Equal(t, cql.Cassandra, f, "the local stack runs Apache Cassandra")
}
