package relay

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.Workers = 0
	c.MaxBackoff = 0
	err := c.Validate()
	require.ErrorContains(t, err, `"workers"`)
	require.ErrorContains(t, err, `"max_backoff"`)
}
