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

	// The idle back-offs of the redrive worker: on by default, 0 turns
	// them off, negative is refused under its full key.
	c = DefaultConfig()
	require.Greater(t, c.ParkedMaxEvery, c.ParkedEvery)
	require.Greater(t, c.Retry.MaxEvery, c.Retry.Every)
	c.ParkedMaxEvery, c.Retry.MaxEvery = 0, 0
	require.NoError(t, c.Validate())
	c.ParkedMaxEvery, c.Retry.MaxEvery = -1, -1
	err = c.Validate()
	require.ErrorContains(t, err, `"parked_max_every"`)
	require.ErrorContains(t, err, `"retry.max_every"`)
}
