package main

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/servicetest"
)

func TestBinary(t *testing.T) {
	// An API port of the test's own, so that a query-service of the local
	// stack on :8082 does not make the binary fail to start.
	servicetest.Contract(t, servicetest.Spec{Kafka: false, Env: []string{"ORDERSTREAM_HTTP_ADDR=" + servicetest.FreeAddr(t)}})
}
