package cql_test

import (
	"testing"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/cql"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, cql.DefaultConfig().Validate())
	tests := []struct {
		name   string
		mutate func(*cql.Config)
		key    string
	}{
		{"no hosts", func(c *cql.Config) { c.Hosts = nil }, "hosts"},
		{"bad port", func(c *cql.Config) { c.Port = 70000 }, "port"},
		{"keyspace with dash", func(c *cql.Config) { c.Keyspace = "order-stream" }, "keyspace"},
		{"keyspace starting with digit", func(c *cql.Config) { c.Keyspace = "1ks" }, "keyspace"},
		{"unknown consistency", func(c *cql.Config) { c.Consistency = "MOST" }, "consistency"},
		{"serial consistency", func(c *cql.Config) { c.SerialConsistency = "QUORUM" }, "serial_consistency"},
		{"zero timeout", func(c *cql.Config) { c.Timeout = 0 }, "timeout"},
		{"password without user", func(c *cql.Config) { c.Password = "x" }, "username"},
		{"cert without key", func(c *cql.Config) { c.TLS.CertFile = "c.pem" }, "tls.cert_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cql.DefaultConfig()
			tc.mutate(&c)
			require.ErrorContains(t, c.Validate(), `"`+tc.key+`"`)
		})
	}
}

func TestClusterConfig(t *testing.T) {
	c := cql.DefaultConfig()
	c.Consistency = "quorum"
	c.SerialConsistency = "SERIAL"
	c.Username, c.Password = "u", "p"
	cc := c.ClusterConfig("ks")
	require.Equal(t, gocql.Quorum, cc.Consistency)
	require.Equal(t, gocql.Serial, cc.SerialConsistency)
	require.Equal(t, "ks", cc.Keyspace)
	require.Equal(t, gocql.PasswordAuthenticator{Username: "u", Password: "p"}, cc.Authenticator)
}
