package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/config"
)

type inner struct {
	Hosts   []string      `mapstructure:"hosts"`
	Timeout time.Duration `mapstructure:"timeout"`
	Retries int           `mapstructure:"retries"`
}

func (i inner) Validate() error {
	if i.Retries < 0 {
		return config.Errorf("retries", "must not be negative, got %d", i.Retries)
	}
	return nil
}

type Base struct {
	Level string `mapstructure:"level"`
}

type testConfig struct {
	Base `mapstructure:",squash"`
	DB   inner `mapstructure:"db"`
}

func (c *testConfig) Validate() error { return config.Nest("db", c.DB.Validate()) }

func defaults() *testConfig {
	return &testConfig{Base: Base{Level: "info"}, DB: inner{Hosts: []string{"a"}, Timeout: time.Second, Retries: 1}}
}

func TestLoadPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte("level: warn\ndb:\n  hosts: [f1, f2]\n  timeout: 3s\n  retries: 4\n"), 0o600))

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want testConfig
	}{
		{name: "defaults", want: *defaults()},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: testConfig{Base: Base{Level: "warn"}, DB: inner{Hosts: []string{"f1", "f2"}, Timeout: 3 * time.Second, Retries: 4}},
		},
		{
			name: "environment over file",
			env:  map[string]string{"ORDERSTREAM_DB_HOSTS": "e1,e2,e3", "ORDERSTREAM_DB_RETRIES": "7"},
			args: []string{"--config", file},
			want: testConfig{Base: Base{Level: "warn"}, DB: inner{Hosts: []string{"e1", "e2", "e3"}, Timeout: 3 * time.Second, Retries: 7}},
		},
		{
			name: "flags over environment",
			env:  map[string]string{"ORDERSTREAM_DB_RETRIES": "7", "ORDERSTREAM_LEVEL": "debug"},
			args: []string{"--config", file, "--db.retries=9", "--db.timeout=250ms"},
			want: testConfig{Base: Base{Level: "debug"}, DB: inner{Hosts: []string{"f1", "f2"}, Timeout: 250 * time.Millisecond, Retries: 9}},
		},
		{
			name: "config file from the environment",
			env:  map[string]string{"ORDERSTREAM_CONFIG": file},
			want: testConfig{Base: Base{Level: "warn"}, DB: inner{Hosts: []string{"f1", "f2"}, Timeout: 3 * time.Second, Retries: 4}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg := defaults()
			require.NoError(t, config.Load("test", tc.args, cfg))
			require.Equal(t, tc.want, *cfg)
		})
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	unknown := filepath.Join(t.TempDir(), "u.yaml")
	require.NoError(t, os.WriteFile(unknown, []byte("db:\n  hostz: [x]\n"), 0o600))

	tests := []struct {
		name string
		env  map[string]string
		args []string
		key  string
	}{
		{name: "validation", args: []string{"--db.retries=-1"}, key: "db.retries"},
		{name: "wrong type from env", env: map[string]string{"ORDERSTREAM_DB_RETRIES": "lots"}, key: "db.retries"},
		{name: "bad duration", args: []string{"--db.timeout=soon"}, key: "db.timeout"},
		{name: "unknown key in file", args: []string{"--config", unknown}, key: "hostz"},
		{name: "unknown flag", args: []string{"--db.hostz=1"}, key: "db.hostz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := config.Load("test", tc.args, defaults())
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.key)
		})
	}
}

func TestNestPrefixesJoinedErrors(t *testing.T) {
	err := config.Nest("cql", errors.Join(config.Errorf("hosts", "empty"), config.Errorf("tls.cert_file", "alone")))
	var fe *config.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "cql.hosts", fe.Key)
	require.Contains(t, err.Error(), `"cql.tls.cert_file"`)
	require.NoError(t, config.Nest("x", nil))
}

func TestKeys(t *testing.T) {
	require.Equal(t, []string{"level", "db.hosts", "db.timeout", "db.retries"}, config.Keys(defaults()))
}
