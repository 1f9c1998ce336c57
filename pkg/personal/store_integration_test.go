package personal_test

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/personal/keystoretest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// TestCQLStoreContract runs the key store contract on customer_keys in the
// shared keyspace (every subtest uses fresh customer ids). Without the
// local stack it skips, and under CI=true it fails.
func TestCQLStoreContract(t *testing.T) {
	session := stacktest.Session(t)
	keystoretest.Suite(t, func(*testing.T) personal.KeyStore { return personal.NewCQLStore(session) })
}
