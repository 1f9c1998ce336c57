package main

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/servicetest"
)

func TestBinary(t *testing.T) {
	servicetest.Contract(t, servicetest.Spec{Kafka: false})
}
