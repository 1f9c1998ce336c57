package migrate_test

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/migrate"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
		err  bool
	}{
		{name: "empty", body: "\n-- only a comment\n", want: nil},
		{name: "two statements", body: "CREATE TABLE a (x int PRIMARY KEY);\n-- c\nALTER TABLE a\n  WITH comment = 'x';\n", want: []string{"CREATE TABLE a (x int PRIMARY KEY)", "ALTER TABLE a\n  WITH comment = 'x'"}},
		{name: "semicolon inside a line stays", body: "INSERT INTO t (a) VALUES ('a;b');\n", want: []string{"INSERT INTO t (a) VALUES ('a;b')"}},
		{name: "unterminated", body: "CREATE TABLE a (x int PRIMARY KEY)\n", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := migrate.Split(tc.body)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestLoadPicksFlavourFilesInOrder(t *testing.T) {
	fsys := fstest.MapFS{
		"v0002_more/common.cql":      {Data: []byte("CREATE TABLE {{keyspace}}.b (x int PRIMARY KEY);\n")},
		"v0001_initial/common.cql":   {Data: []byte("CREATE TABLE {{keyspace}}.a (x int PRIMARY KEY);\n")},
		"v0001_initial/scylladb.cql": {Data: []byte("ALTER TABLE {{keyspace}}.a WITH cdc = {'enabled': true};\n")},
	}
	cass, err := migrate.Load(fsys, cql.Cassandra, "ks")
	require.NoError(t, err)
	require.Len(t, cass, 2)
	require.Equal(t, 1, cass[0].Version)
	require.Equal(t, "initial", cass[0].Name)
	require.Equal(t, []string{"CREATE TABLE ks.a (x int PRIMARY KEY)"}, cass[0].Statements)
	require.Equal(t, 2, cass[1].Version)

	scylla, err := migrate.Load(fsys, cql.ScyllaDB, "ks")
	require.NoError(t, err)
	require.Equal(t, []string{"CREATE TABLE ks.a (x int PRIMARY KEY)", "ALTER TABLE ks.a WITH cdc = {'enabled': true}"}, scylla[0].Statements)
	require.NotEqual(t, cass[0].Checksum, scylla[0].Checksum, "the checksum covers the flavour's files")
	require.Equal(t, cass[1].Checksum, scylla[1].Checksum)
}

func TestLoadRejectsBadLayout(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"bad folder name":   {"initial/common.cql": {Data: []byte("SELECT 1;\n")}},
		"missing common":    {"v0001_x/scylladb.cql": {Data: []byte("SELECT 1;\n")}},
		"duplicate version": {"v0001_a/common.cql": {Data: []byte("SELECT 1;\n")}, "v0001_b/common.cql": {Data: []byte("SELECT 1;\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := migrate.Load(fsys, cql.Cassandra, "ks")
			require.Error(t, err)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, migrate.DefaultConfig().Validate())
	c := migrate.DefaultConfig()
	c.Replication = "SimpleStrategy"
	require.ErrorContains(t, c.Validate(), "replication")
}
