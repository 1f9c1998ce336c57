package deadletter_test

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/deadletter/deadlettertest"
)

// The contract against the in-memory twin.
func TestMemoryContract(t *testing.T) {
	deadlettertest.Suite(t, func(*testing.T) deadlettertest.Store { return deadletter.NewMemory() })
}
