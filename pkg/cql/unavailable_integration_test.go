package cql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/cql/unavailabletest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// TestUnavailableAgainstRealDriver: the errors the real driver returns when
// its only node drops every connection and refuses new ones, and when the
// session is closed, are classed unavailable (503), not as bugs (500).
func TestUnavailableAgainstRealDriver(t *testing.T) {
	c := stacktest.RequireCQL(t)
	proxy := unavailabletest.ProxyTo(t, c.Hosts[0], c.Port)
	session := unavailabletest.Session(t, proxy, "system")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	query := func() error {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		var v string
		return session.Query(`SELECT release_version FROM system.local`).WithContext(qctx).Scan(&v)
	}
	require.NoError(t, query(), "the proxy works before it is cut")

	proxy.Cut()
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		err := query()
		require.Error(t, err, "a query through a cut proxy cannot succeed")
		require.True(t, cql.Unavailable(err), "%T %v is a database outage, not a bug", err, err)
		seen[err.Error()] = true
	}
	t.Logf("errors seen with the node gone: %v", seen)

	session.Close()
	err := query()
	require.True(t, errors.Is(err, gocql.ErrSessionClosed), "%v", err)
	require.True(t, cql.Unavailable(err))
}
