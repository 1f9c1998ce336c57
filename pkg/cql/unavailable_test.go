package cql

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"
)

// serverError stands for an error frame as gocql returns it for codes it
// has no struct for (frm.ErrorFrame is internal): code and Cassandra's
// own message.
type serverError struct {
	code int
	msg  string
}

func (e serverError) Code() int       { return e.code }
func (e serverError) Message() string { return e.msg }
func (e serverError) Error() string   { return e.msg }

// TestUnavailableClasses: every way the database can be down, going down,
// overloaded or unreachable is told apart from a bug, for reads and writes
// alike, however deep it is wrapped; the API answers those 503 with
// Retry-After instead of 500.
func TestUnavailableClasses(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("reading snapshot of 7f0e: %w", err) }
	retry := []struct {
		name string
		err  error
	}{
		{"shutting down (server error frame)", serverError{gocql.ErrCodeServer, "Server is shutting down"}},
		{"shutting down (other code)", serverError{gocql.ErrCodeInvalid, "Server is shutting down"}},
		{"host pool without connections", gocql.ErrNoConnectionsInPool},
		{"host without pool", gocql.ErrNoPool},
		{"no hosts in the pool", gocql.ErrNoConnections},
		{"no connections at start", gocql.ErrNoConnectionsStarted},
		{"no streams", gocql.ErrNoStreams},
		{"too many timeouts", gocql.ErrTooManyTimeouts},
		{"connection closed", gocql.ErrConnectionClosed},
		{"no response in time", gocql.ErrTimeoutNoResponse},
		{"host down", gocql.ErrHostDown},
		{"session closed", gocql.ErrSessionClosed},
		{"session not ready", gocql.ErrSessionNotReady},
		{"deadline", context.DeadlineExceeded},
		{"unavailable", &gocql.RequestErrUnavailable{}},
		{"write timeout", &gocql.RequestErrWriteTimeout{}},
		{"read timeout", &gocql.RequestErrReadTimeout{}},
		{"read failure", &gocql.RequestErrReadFailure{}},
		{"write failure", &gocql.RequestErrWriteFailure{}},
		{"cas write unknown", &gocql.RequestErrCASWriteUnknown{}},
		{"overloaded", serverError{gocql.ErrCodeOverloaded, "Server is overloaded"}},
		{"bootstrapping", serverError{gocql.ErrCodeBootstrapping, "Cannot read from a bootstrapping node"}},
		{"truncate", serverError{gocql.ErrCodeTruncate, "Error during truncate"}},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}},
		{"broken pipe", syscall.EPIPE},
	}
	for _, tc := range retry {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{tc.err, wrap(tc.err), wrap(wrap(tc.err))} {
				require.True(t, ReadUnavailable(err), "read: %v", err)
				require.True(t, WriteUnavailable(err), "write: %v", err)
				require.True(t, Unavailable(err), "any: %v", err)
			}
		})
	}
	bugs := []struct {
		name string
		err  error
	}{
		{"syntax", serverError{gocql.ErrCodeSyntax, "line 1:0 no viable alternative"}},
		{"invalid", serverError{gocql.ErrCodeInvalid, "Undefined column name x"}},
		{"server error of another kind", serverError{gocql.ErrCodeServer, "java.lang.NullPointerException"}},
		{"unauthorized", serverError{gocql.ErrCodeUnauthorized, "no permission"}},
		{"not found", gocql.ErrNotFound},
		{"arguments", gocql.ErrQueryArgLength},
		{"canceled by the client", context.Canceled},
		{"plain", errors.New("decoding event 3: unexpected end of JSON input")},
	}
	for _, tc := range bugs {
		t.Run(tc.name, func(t *testing.T) {
			require.False(t, ReadUnavailable(wrap(tc.err)))
			require.False(t, WriteUnavailable(wrap(tc.err)))
			require.False(t, Unavailable(wrap(tc.err)))
		})
	}
}
