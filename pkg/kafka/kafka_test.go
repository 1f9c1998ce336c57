package kafka_test

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/kafka"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, kafka.DefaultConfig().Validate())
	tests := []struct {
		name   string
		mutate func(*kafka.Config)
		key    string
	}{
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, "brokers"},
		{"broker without port", func(c *kafka.Config) { c.Brokers = []string{"localhost"} }, "brokers"},
		{"version too old for Kafka 4", func(c *kafka.Config) { c.Version = "2.0.0" }, "version"},
		{"version garbage", func(c *kafka.Config) { c.Version = "latest" }, "version"},
		{"zero dial timeout", func(c *kafka.Config) { c.DialTimeout = 0 }, "dial_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := kafka.DefaultConfig()
			tc.mutate(&c)
			require.ErrorContains(t, c.Validate(), `"`+tc.key+`"`)
		})
	}
}

func TestSaramaConfig(t *testing.T) {
	c := kafka.DefaultConfig()
	c.SASLUser, c.SASLPassword = "u", "p"
	sc, err := c.Sarama("relay")
	require.NoError(t, err)
	require.Equal(t, "relay", sc.ClientID)
	require.True(t, sc.Version.IsAtLeast(sarama.V2_1_0_0))
	require.True(t, sc.Net.SASL.Enable)
	require.NoError(t, sc.Validate())
}
