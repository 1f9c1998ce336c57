package service

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// The event store of cdc-relay and the projectors is configured under
// eventstore.* (it was eventstore.DefaultConfig() in their code), and a
// bad value names its key.
func TestStreamConfigHasTheEventStore(t *testing.T) {
	c := DefaultStreamConfig(":0")
	require.Equal(t, eventstore.DefaultConfig(), c.EventStore)
	require.NoError(t, c.Validate())
	c.EventStore.PageSize = 3
	c.EventStore.SerialConsistency = "SOMETIMES"
	err := c.Validate()
	require.ErrorContains(t, err, `"eventstore.page_size"`)
	require.ErrorContains(t, err, `"eventstore.serial_consistency"`)
}
