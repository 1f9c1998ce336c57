package servicetest

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// FreeAddr's ports are bindable and below the ephemeral range, where no
// outgoing connection can take them before the service binds.
func TestFreeAddrBelowTheEphemeralRange(t *testing.T) {
	first := ephemeralFirst()
	for range 50 {
		addr := FreeAddr(t)
		_, p, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		port, err := strconv.Atoi(p)
		require.NoError(t, err)
		if first > 11000 {
			require.Less(t, port, first, addr)
			require.GreaterOrEqual(t, port, 10000, addr)
		}
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err, "the port of %s is free", addr)
		require.NoError(t, ln.Close())
	}
}
