// Package kafka builds the sarama configuration and client every service
// uses to reach Redpanda in production and Apache Kafka locally.
package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
)

// Config is the broker connection configuration.
type Config struct {
	Brokers      []string      `mapstructure:"brokers" help:"bootstrap brokers host:port, comma separated"`
	ClientID     string        `mapstructure:"client_id" help:"client id sent to the brokers; empty for the service name"`
	Version      string        `mapstructure:"version" help:"Kafka protocol version to speak, at least 2.1.0"`
	DialTimeout  time.Duration `mapstructure:"dial_timeout" help:"deadline of one broker connection attempt"`
	StartupWait  time.Duration `mapstructure:"startup_wait" help:"how long to keep trying the brokers at start before giving up"`
	SASLUser     string        `mapstructure:"sasl_user" help:"SASL/PLAIN user; empty disables SASL"`
	SASLPassword string        `mapstructure:"sasl_password" help:"SASL/PLAIN password"`
	TLS          TLSConfig     `mapstructure:"tls"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `mapstructure:"enabled" help:"connect with TLS"`
	CAFile             string `mapstructure:"ca_file" help:"CA bundle that signs the broker certificates"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" help:"do not verify the broker certificate (tests only)"`
}

// DefaultConfig talks to a single local broker.
func DefaultConfig() Config {
	return Config{
		Brokers:     []string{"127.0.0.1:9092"},
		Version:     "3.7.0",
		DialTimeout: 5 * time.Second,
		StartupWait: 60 * time.Second,
	}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, config.Errorf("brokers", "at least one broker is required"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, config.Errorf("brokers", "want host:port, got %q", b))
		}
	}
	if v, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		errs = append(errs, config.Errorf("version", "%v", err))
	} else if !v.IsAtLeast(sarama.V2_1_0_0) {
		errs = append(errs, config.Errorf("version", "Kafka 4 and Redpanda need at least 2.1.0, got %s", c.Version))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, config.Errorf("dial_timeout", "must be positive, got %s", c.DialTimeout))
	}
	if c.StartupWait < 0 {
		errs = append(errs, config.Errorf("startup_wait", "must not be negative, got %s", c.StartupWait))
	}
	return errors.Join(errs...)
}

// Sarama returns a sarama configuration for clientID with the connection
// settings applied; callers add producer or consumer settings.
func (c Config) Sarama(clientID string) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(c.Version)
	if err != nil {
		return nil, fmt.Errorf("kafka version: %w", err)
	}
	sc.Version = v
	sc.ClientID = clientID
	if c.ClientID != "" {
		sc.ClientID = c.ClientID
	}
	sc.Net.DialTimeout = c.DialTimeout
	sc.Net.ReadTimeout = 30 * time.Second
	sc.Net.WriteTimeout = 30 * time.Second
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	if c.SASLUser != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		sc.Net.SASL.User = c.SASLUser
		sc.Net.SASL.Password = c.SASLPassword
	}
	if c.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // opt-in for tests
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading kafka.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file %s holds no PEM certificate", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	return sc, nil
}

// Connect opens a client to the brokers, retrying for up to StartupWait.
func Connect(ctx context.Context, c Config, sc *sarama.Config) (sarama.Client, error) {
	deadline := time.Now().Add(c.StartupWait)
	bo := backoff.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second}.Start()
	for attempt := 1; ; attempt++ {
		client, err := sarama.NewClient(c.Brokers, sc)
		if err == nil {
			return client, nil
		}
		wait := bo.Next()
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("connecting to Kafka %s after %d attempts: %w", strings.Join(c.Brokers, ","), attempt, err)
		}
		if !backoff.Sleep(ctx, wait) {
			return nil, fmt.Errorf("connecting to Kafka: %w", ctx.Err())
		}
	}
}

// Ping refreshes the cluster metadata and checks that a broker is
// reachable, within ctx's deadline.
func Ping(ctx context.Context, client sarama.Client) error {
	done := make(chan error, 1)
	go func() {
		if err := client.RefreshMetadata(); err != nil {
			done <- err
			return
		}
		_, err := client.Controller()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("kafka ping: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka ping: %w", ctx.Err())
	}
}
