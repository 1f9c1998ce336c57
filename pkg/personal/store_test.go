package personal_test

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/personal/keystoretest"
)

func TestMemStoreContract(t *testing.T) {
	keystoretest.Suite(t, func(*testing.T) personal.KeyStore { return personal.NewMemStore() })
}
