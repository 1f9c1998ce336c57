package lease_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/lease"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, lease.DefaultConfig().Validate())
	for _, tc := range []struct {
		cfg lease.Config
		key string
	}{
		{lease.Config{TTL: time.Second, RenewEvery: 100 * time.Millisecond}, "ttl"},
		{lease.Config{TTL: 3 * time.Second, RenewEvery: 2 * time.Second}, "renew_every"},
		{lease.Config{TTL: 10 * time.Second}, "renew_every"},
	} {
		require.ErrorContains(t, tc.cfg.Validate(), `"`+tc.key+`"`)
	}
}
