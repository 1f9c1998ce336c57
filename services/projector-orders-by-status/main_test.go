package main

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

func TestBinary(t *testing.T) {
	// Topics of its own (created empty when the group subscribes), so that
	// it does not read the shared topics' records of other keyspaces.
	servicetest.Contract(t, servicetest.Spec{Kafka: true, Env: []string{"ORDERSTREAM_PROJECTOR_TOPIC_PREFIX=" + stacktest.UniqueName("contract")}})
}
