// Package stacktest connects integration tests to the real local stack
// (Apache Cassandra and Apache Kafka started by scripts/stack.sh). When a
// server is not reachable the test is skipped with a message naming
// `make up-infra`, except under CI=true, where it fails: CI must never pass
// by skipping the tests that matter.
package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/migrate"
)

// SharedKeyspace is the keyspace integration tests share; the migrator is
// idempotent and safe to run concurrently, so every test package may
// migrate it. Tests isolate their data by fresh random ids.
const SharedKeyspace = "orderstream_it"

// CQLConfig is the CQL configuration of the local stack, overridable with
// ORDERSTREAM_TEST_CQL_HOSTS (comma separated host or host:port).
func CQLConfig() cql.Config {
	c := cql.DefaultConfig()
	if hosts := os.Getenv("ORDERSTREAM_TEST_CQL_HOSTS"); hosts != "" {
		c.Hosts = strings.Split(hosts, ",")
	}
	c.Keyspace = SharedKeyspace
	c.StartupWait = 10 * time.Second
	c.Timeout = 10 * time.Second
	return c
}

// KafkaConfig is the Kafka configuration of the local stack, overridable
// with ORDERSTREAM_TEST_KAFKA_BROKERS.
func KafkaConfig() kafka.Config {
	c := kafka.DefaultConfig()
	if brokers := os.Getenv("ORDERSTREAM_TEST_KAFKA_BROKERS"); brokers != "" {
		c.Brokers = strings.Split(brokers, ",")
	}
	c.StartupWait = 10 * time.Second
	return c
}

// RequireCQL skips (or under CI fails) the test when CQL is not reachable.
func RequireCQL(t testing.TB) cql.Config {
	t.Helper()
	c := CQLConfig()
	host := c.Hosts[0]
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, fmt.Sprint(c.Port))
	}
	require(t, "Cassandra (CQL)", host)
	return c
}

// RequireKafka skips (or under CI fails) the test when Kafka is not reachable.
func RequireKafka(t testing.TB) kafka.Config {
	t.Helper()
	c := KafkaConfig()
	require(t, "Kafka", c.Brokers[0])
	return c
}

func require(t testing.TB, what, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = conn.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s (%v); start the local stack with `make up-infra`", what, addr, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " — integration tests must run under CI=true")
	}
	t.Skip(msg)
}

// Session returns a session bound to the shared keyspace, migrated to the
// repository's schema/, closed when the test ends.
func Session(t testing.TB) *gocql.Session {
	t.Helper()
	c := RequireCQL(t)
	Migrate(t, c, c.Keyspace)
	s, err := cql.Connect(context.Background(), c, c.Keyspace, zerolog.Nop())
	if err != nil {
		t.Fatalf("connecting to CQL: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// PrivateKeyspace migrates a keyspace of the test's own (named prefix +
// random), connects to it, and drops it when the test ends. It returns the
// session and the CQL configuration pointing at the keyspace.
func PrivateKeyspace(t testing.TB, prefix string) (*gocql.Session, cql.Config) {
	t.Helper()
	c := RequireCQL(t)
	c.Keyspace = UniqueName(prefix)
	Migrate(t, c, c.Keyspace)
	s, err := cql.Connect(context.Background(), c, c.Keyspace, zerolog.Nop())
	if err != nil {
		t.Fatalf("connecting to CQL: %v", err)
	}
	t.Cleanup(func() {
		_ = s.Query("DROP KEYSPACE IF EXISTS " + c.Keyspace).Exec()
		s.Close()
	})
	return s, c
}

var migrated sync.Map // keyspace -> struct{}

// Migrate applies the repository's schema/ to keyspace (once per test
// process and keyspace).
func Migrate(t testing.TB, c cql.Config, keyspace string) {
	t.Helper()
	if _, done := migrated.Load(keyspace); done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := cql.Connect(ctx, c, "", zerolog.Nop())
	if err != nil {
		t.Fatalf("connecting to CQL: %v", err)
	}
	defer s.Close()
	flavour, err := cql.DetectFlavour(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	migrations, err := migrate.Load(os.DirFS(SchemaDir(t)), flavour, keyspace)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate.New(s, keyspace, flavour, migrate.DefaultConfig(), zerolog.Nop()).Apply(ctx, migrations); err != nil {
		t.Fatalf("migrating %s: %v", keyspace, err)
	}
	migrated.Store(keyspace, struct{}{})
}

// SchemaDir is the repository's schema/ folder, found from the test's
// working directory by walking up to go.work.
func SchemaDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "schema")
}

// RepoRoot is the folder holding go.work.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test's directory")
		}
		dir = parent
	}
}

// UniqueName returns prefix followed by random hex, usable as a keyspace,
// topic or group name.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
