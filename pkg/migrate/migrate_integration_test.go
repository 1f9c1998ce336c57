package migrate_test

import (
	"context"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/migrate"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func TestApplyRefusesEditedMigration(t *testing.T) {
	c := stacktest.RequireCQL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := cql.Connect(ctx, c, "", zerolog.Nop())
	require.NoError(t, err)
	defer s.Close()
	keyspace := stacktest.UniqueName("mig_")
	t.Cleanup(func() { _ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec() })

	v1 := fstest.MapFS{"v0001_t/common.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS {{keyspace}}.t (x int PRIMARY KEY);\n")}}
	m := migrate.New(s, keyspace, cql.Cassandra, migrate.DefaultConfig(), zerolog.Nop())
	migs, err := migrate.Load(v1, cql.Cassandra, keyspace)
	require.NoError(t, err)
	res, err := m.Apply(ctx, migs)
	require.NoError(t, err)
	require.Equal(t, []int{1}, res.Applied)

	edited := fstest.MapFS{"v0001_t/common.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS {{keyspace}}.t (x int PRIMARY KEY, y int);\n")}}
	migs, err = migrate.Load(edited, cql.Cassandra, keyspace)
	require.NoError(t, err)
	_, err = m.Apply(ctx, migs)
	require.ErrorIs(t, err, migrate.ErrChecksum)

	// A failed statement is not recorded: fixing it and re-running applies it.
	broken := fstest.MapFS{
		"v0001_t/common.cql":   v1["v0001_t/common.cql"],
		"v0002_bad/common.cql": {Data: []byte("CREATE TABLE {{keyspace}}.u (x nosuchtype PRIMARY KEY);\n")},
	}
	migs, err = migrate.Load(broken, cql.Cassandra, keyspace)
	require.NoError(t, err)
	_, err = m.Apply(ctx, migs)
	require.ErrorContains(t, err, "v0002_bad statement 1")

	fixed := fstest.MapFS{
		"v0001_t/common.cql":   v1["v0001_t/common.cql"],
		"v0002_bad/common.cql": {Data: []byte("CREATE TABLE IF NOT EXISTS {{keyspace}}.u (x int PRIMARY KEY);\n")},
	}
	migs, err = migrate.Load(fixed, cql.Cassandra, keyspace)
	require.NoError(t, err)
	res, err = m.Apply(ctx, migs)
	require.NoError(t, err)
	require.Equal(t, []int{2}, res.Applied)
	require.Equal(t, []int{1}, res.Skipped)
}

func TestRepositorySchemaLoads(t *testing.T) {
	for _, f := range []cql.Flavour{cql.Cassandra, cql.ScyllaDB} {
		migs, err := migrate.Load(os.DirFS(stacktest.SchemaDir(t)), f, "orderstream")
		require.NoError(t, err)
		require.NotEmpty(t, migs)
		require.Equal(t, 1, migs[0].Version)
	}
}
