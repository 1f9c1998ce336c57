package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/stacktest"
	"github.com/orderstream/orderstream/schema"
)

// Every table DESIGN.md names, plus the migrator's own.
var wantTables = []string{
	"event_store", "snapshots", "idempotency_keys", "relay_progress", "relay_leases",
	"dead_letter_queue", "projection_offsets", "order_read_model", "orders_by_customer",
	"orders_by_status", "customer_read_model", "schema_migrations", "schema_lock", "parked_aggregates",
	"projection_checkpoints", "projection_rebuilds",
	"dead_letters_by_component", "dead_letters_by_event_type", "dead_letters_by_aggregate",
	"dlq_retry_requests", "dlq_retry_results", "customer_keys",
	"projection_generations", "projection_rebuild_ranges",
}

// versions is the JSON list of every migration version in schema/, as the
// migrator logs it: [1,2,3,…].
func versions(t *testing.T) string {
	t.Helper()
	dirs, err := fs.ReadDir(schema.FS, ".")
	require.NoError(t, err)
	var vs []string
	for _, d := range dirs {
		var v int
		if _, err := fmt.Sscanf(d.Name(), "v%04d_", &v); d.IsDir() && err == nil {
			vs = append(vs, strconv.Itoa(v))
		}
	}
	require.NotEmpty(t, vs)
	return "[" + strings.Join(vs, ",") + "]"
}

func TestMigratesFreshKeyspaceOnceEvenConcurrently(t *testing.T) {
	c := stacktest.RequireCQL(t)
	keyspace := stacktest.UniqueName("mig_")
	args := []string{"--cql.keyspace=" + keyspace, "--cql.hosts=" + strings.Join(c.Hosts, ",")}

	// Four migrators race on a fresh keyspace: all succeed, v1 is applied once.
	var wg sync.WaitGroup
	outs := make([]*bytes.Buffer, 4)
	codes := make([]int, 4)
	for i := range outs {
		outs[i] = &bytes.Buffer{}
		wg.Go(func() { codes[i] = run(args, outs[i], outs[i]) })
	}
	wg.Wait()
	applied := 0
	for i, out := range outs {
		require.Equal(t, 0, codes[i], "migrator %d output: %s", i, out)
		if strings.Contains(out.String(), `"applied":`+versions(t)) {
			applied++
		}
	}
	require.Equal(t, 1, applied, "exactly one migrator applies the migrations")

	session, err := cql.Connect(context.Background(), c, "", zerolog.Nop())
	require.NoError(t, err)
	defer session.Close()
	t.Cleanup(func() { _ = session.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec() })

	got := map[string]bool{}
	iter := session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, keyspace).Iter()
	var name string
	for iter.Scan(&name) {
		got[name] = true
	}
	require.NoError(t, iter.Close())
	for _, table := range wantTables {
		require.True(t, got[table], "table %s missing after migration", table)
	}

	// A re-run applies nothing.
	var out bytes.Buffer
	require.Equal(t, 0, run(args, &out, &out), out.String())
	require.Contains(t, out.String(), `"applied":[]`)
	require.Contains(t, out.String(), `"already_applied":`+versions(t))
}

func TestBrokenConfigNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"--cql.keyspace=bad-name"}, "cql.keyspace"},
		{[]string{"--migrate.replication=three"}, "migrate.replication"},
		{[]string{"--migrate.lock_ttl=1s"}, "migrate.lock_ttl"},
	} {
		var out bytes.Buffer
		require.Equal(t, 2, run(tc.args, &out, &out))
		require.Contains(t, out.String(), tc.key)
	}
}
