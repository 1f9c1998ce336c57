package cql

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/gocql/gocql"
)

// Unavailable tells a database that is down, going down, overloaded or
// unreachable, where the client should retry (an HTTP API answers 503 with
// Retry-After), from a bug (500). It is one classification for reads and
// writes: a command reads before it writes, and a query may meet a node
// shutting down as well as a timeout, so no class is left to only one side.
//
// The classes: a deadline; a network error; gocql's errors for a session
// or pool without usable connections (closed, not ready, no hosts, a host
// pool without connections, no streams, too many timeouts, a host down,
// a connection lost under a request in flight);
// the server's Unavailable, Overloaded, Bootstrapping, Truncate, read and
// write timeouts and failures, and CAS write unknown; and any error frame
// whose message says the server is shutting down ("Server is shutting
// down", which Cassandra sends while draining, with no code of its own).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range unavailableErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	// A connection dropped under a request in flight surfaces as the
	// driver's QueryError around a bare EOF; an EOF from anywhere else
	// (decoding stored data) is no outage.
	if qe, ok := errors.AsType[*gocql.QueryError](err); ok && (errors.Is(qe, io.EOF) || errors.Is(qe, io.ErrUnexpectedEOF)) {
		return true
	}
	for _, match := range unavailableTypes {
		if match(err) {
			return true
		}
	}
	if reqErr, ok := errors.AsType[gocql.RequestError](err); ok {
		for _, c := range unavailableCodes {
			if reqErr.Code() == c {
				return true
			}
		}
		if strings.Contains(strings.ToLower(reqErr.Message()), "shutting down") {
			return true
		}
	}
	return false
}

// ReadUnavailable is Unavailable, kept for callers that name the side.
func ReadUnavailable(err error) bool { return Unavailable(err) }

// WriteUnavailable is Unavailable, kept for callers that name the side.
func WriteUnavailable(err error) bool { return Unavailable(err) }

var unavailableErrors = []error{
	context.DeadlineExceeded,
	gocql.ErrSessionClosed,
	gocql.ErrSessionNotReady,
	gocql.ErrNoConnections,
	gocql.ErrNoConnectionsStarted,
	gocql.ErrNoConnectionsInPool,
	gocql.ErrNoPool,
	gocql.ErrNoStreams,
	gocql.ErrTooManyTimeouts,
	gocql.ErrConnectionClosed,
	gocql.ErrTimeoutNoResponse,
	gocql.ErrHostDown,
	gocql.ErrUnavailable,
}

var unavailableCodes = []int{
	gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping, gocql.ErrCodeTruncate,
	gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeReadFailure, gocql.ErrCodeWriteFailure,
	gocql.ErrCodeCASWriteUnknown,
}

// unavailableTypes match gocql's typed error frames whatever code they
// carry (their code lives in an internal frame a test cannot build).
var unavailableTypes = []func(error) bool{
	isType[*gocql.RequestErrUnavailable],
	isType[*gocql.RequestErrWriteTimeout],
	isType[*gocql.RequestErrReadTimeout],
	isType[*gocql.RequestErrReadFailure],
	isType[*gocql.RequestErrWriteFailure],
	isType[*gocql.RequestErrCASWriteUnknown],
}

func isType[T error](err error) bool {
	_, ok := errors.AsType[T](err)
	return ok
}
