// Package cql opens the gocql session every service uses (ScyllaDB in
// production, Apache Cassandra locally), from a Config that names hosts,
// keyspace, consistency, timeouts, credentials and TLS, and tells which of
// the two databases it is talking to.
package cql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
)

// Config is the connection configuration of the CQL session.
type Config struct {
	Hosts             []string      `mapstructure:"hosts" help:"contact points, host or host:port, comma separated"`
	Port              int           `mapstructure:"port" help:"CQL native port used when a host has none"`
	Keyspace          string        `mapstructure:"keyspace" help:"keyspace of the orderstream tables"`
	LocalDC           string        `mapstructure:"local_dc" help:"datacenter preferred by the token-aware policy; empty for any"`
	Consistency       string        `mapstructure:"consistency" help:"default consistency of reads and writes"`
	SerialConsistency string        `mapstructure:"serial_consistency" help:"consistency of the Paxos phase of conditional writes: SERIAL or LOCAL_SERIAL"`
	ConnectTimeout    time.Duration `mapstructure:"connect_timeout" help:"deadline of one connection attempt"`
	Timeout           time.Duration `mapstructure:"timeout" help:"deadline of one query"`
	StartupWait       time.Duration `mapstructure:"startup_wait" help:"how long to keep trying to connect at start before giving up"`
	NumConns          int           `mapstructure:"num_conns" help:"connections per host (per shard on ScyllaDB)"`
	Username          string        `mapstructure:"username" help:"username for PasswordAuthenticator; empty for none"`
	Password          string        `mapstructure:"password" help:"password for PasswordAuthenticator"`
	TLS               TLSConfig     `mapstructure:"tls"`
	// HostLookup off keeps the session on the configured hosts: for a
	// relay or NAT between the service and the database, where the
	// addresses the nodes advertise are not reachable (the local
	// Kubernetes cluster of scripts/cluster.sh).
	HostLookup bool `mapstructure:"host_lookup" help:"discover the nodes from system.local and system.peers; off when their advertised addresses are not reachable (relay, NAT)"`
}

// TLSConfig enables client TLS to the database.
type TLSConfig struct {
	Enabled            bool   `mapstructure:"enabled" help:"connect with TLS"`
	CAFile             string `mapstructure:"ca_file" help:"CA bundle that signs the server certificates"`
	CertFile           string `mapstructure:"cert_file" help:"client certificate for mutual TLS"`
	KeyFile            string `mapstructure:"key_file" help:"client key for mutual TLS"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" help:"do not verify the server certificate (tests only)"`
}

// DefaultConfig talks to a single local node.
func DefaultConfig() Config {
	return Config{
		Hosts:             []string{"127.0.0.1"},
		Port:              9042,
		Keyspace:          "orderstream",
		Consistency:       "LOCAL_QUORUM",
		SerialConsistency: "LOCAL_SERIAL",
		ConnectTimeout:    5 * time.Second,
		Timeout:           5 * time.Second,
		StartupWait:       60 * time.Second,
		NumConns:          2,
		HostLookup:        true,
	}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Hosts) == 0 {
		errs = append(errs, config.Errorf("hosts", "at least one host is required"))
	}
	for _, h := range c.Hosts {
		if strings.TrimSpace(h) == "" {
			errs = append(errs, config.Errorf("hosts", "empty host in %q", strings.Join(c.Hosts, ",")))
		}
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, config.Errorf("port", "must be 1..65535, got %d", c.Port))
	}
	if !validIdentifier(c.Keyspace) {
		errs = append(errs, config.Errorf("keyspace", "must be a CQL identifier of letters, digits and _, got %q", c.Keyspace))
	}
	if _, err := ParseConsistency(c.Consistency); err != nil {
		errs = append(errs, config.Errorf("consistency", "%v", err))
	}
	if s := strings.ToUpper(c.SerialConsistency); s != "SERIAL" && s != "LOCAL_SERIAL" {
		errs = append(errs, config.Errorf("serial_consistency", "must be SERIAL or LOCAL_SERIAL, got %q", c.SerialConsistency))
	}
	for key, d := range map[string]time.Duration{"connect_timeout": c.ConnectTimeout, "timeout": c.Timeout} {
		if d <= 0 {
			errs = append(errs, config.Errorf(key, "must be positive, got %s", d))
		}
	}
	if c.StartupWait < 0 {
		errs = append(errs, config.Errorf("startup_wait", "must not be negative, got %s", c.StartupWait))
	}
	if c.NumConns < 1 {
		errs = append(errs, config.Errorf("num_conns", "must be at least 1, got %d", c.NumConns))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, config.Errorf("username", "required when a password is set"))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, config.Errorf("tls.cert_file", "cert_file and key_file go together"))
	}
	return errors.Join(errs...)
}

func validIdentifier(s string) bool {
	if s == "" || len(s) > 48 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ParseConsistency parses a consistency level name such as LOCAL_QUORUM.
func ParseConsistency(s string) (gocql.Consistency, error) {
	var c gocql.Consistency
	if err := c.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("unknown consistency %q", s)
	}
	return c, nil
}

// ClusterConfig builds the gocql cluster configuration; keyspace may be
// empty for a session that is not bound to one (the schema migrator).
func (c Config) ClusterConfig(keyspace string) *gocql.ClusterConfig {
	cluster := gocql.NewCluster(c.Hosts...)
	cluster.Port = c.Port
	cluster.Keyspace = keyspace
	cluster.Consistency, _ = ParseConsistency(c.Consistency)
	if strings.EqualFold(c.SerialConsistency, "SERIAL") {
		cluster.SerialConsistency = gocql.Serial
	} else {
		cluster.SerialConsistency = gocql.LocalSerial
	}
	cluster.ConnectTimeout = c.ConnectTimeout
	cluster.Timeout = c.Timeout
	cluster.WriteTimeout = c.Timeout
	cluster.NumConns = c.NumConns
	cluster.ProtoVersion = 4
	cluster.DisableInitialHostLookup = !c.HostLookup
	cluster.DefaultIdempotence = false
	// A single failed reconnect must not drop a host for good: Cassandra
	// restarts in fault tests and rolling upgrades in production.
	cluster.ReconnectionPolicy = &gocql.ExponentialReconnectionPolicy{MaxRetries: 1 << 20, InitialInterval: 200 * time.Millisecond, MaxInterval: 5 * time.Second}
	cluster.ReconnectInterval = 2 * time.Second
	fallback := gocql.RoundRobinHostPolicy()
	if c.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(c.LocalDC)
	}
	cluster.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	if c.Username != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	if c.TLS.Enabled {
		cluster.SslOpts = &gocql.SslOptions{
			CaPath:                 c.TLS.CAFile,
			CertPath:               c.TLS.CertFile,
			KeyPath:                c.TLS.KeyFile,
			EnableHostVerification: !c.TLS.InsecureSkipVerify,
		}
	}
	return cluster
}

// Connect opens a session bound to keyspace (empty for none), retrying with
// backoff for up to StartupWait so that a service started alongside its
// database waits for it instead of failing at once.
func Connect(ctx context.Context, c Config, keyspace string, logger zerolog.Logger) (*gocql.Session, error) {
	deadline := time.Now().Add(c.StartupWait)
	bo := backoff.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second}.Start()
	for attempt := 1; ; attempt++ {
		session, err := c.ClusterConfig(keyspace).CreateSession()
		if err == nil {
			return session, nil
		}
		wait := bo.Next()
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("connecting to CQL %s (keyspace %q) after %d attempts: %w", strings.Join(c.Hosts, ","), keyspace, attempt, err)
		}
		logger.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("CQL not reachable yet")
		if !backoff.Sleep(ctx, wait) {
			return nil, fmt.Errorf("connecting to CQL: %w", ctx.Err())
		}
	}
}

// Ping checks that the database answers a query within ctx's deadline.
func Ping(ctx context.Context, s *gocql.Session) error {
	var v string
	if err := s.Query(`SELECT release_version FROM system.local`).WithContext(ctx).Idempotent(true).Scan(&v); err != nil {
		return fmt.Errorf("CQL ping: %w", err)
	}
	return nil
}

// Flavour is the kind of CQL database behind a session.
type Flavour string

// The databases orderstream runs on.
const (
	ScyllaDB  Flavour = "scylladb"
	Cassandra Flavour = "cassandra"
)

// DetectFlavour tells ScyllaDB from Apache Cassandra by a table only
// ScyllaDB has (system.versions); the query is valid on both.
func DetectFlavour(ctx context.Context, s *gocql.Session) (Flavour, error) {
	var name string
	err := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'system' AND table_name = 'versions'`).
		WithContext(ctx).Idempotent(true).Scan(&name)
	switch {
	case err == nil:
		return ScyllaDB, nil
	case errors.Is(err, gocql.ErrNotFound):
		return Cassandra, nil
	default:
		return "", fmt.Errorf("detecting database flavour: %w", err)
	}
}
