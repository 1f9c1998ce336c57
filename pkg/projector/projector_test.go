package projector

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.MaxAttempts, c.TopicPrefix, c.RebuildRanges = 0, "", 0
	err := c.Validate()
	require.ErrorContains(t, err, `"max_attempts"`)
	require.ErrorContains(t, err, `"topic_prefix"`)
	require.ErrorContains(t, err, `"rebuild_ranges"`)
}
