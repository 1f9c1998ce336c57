package cql

import (
	"context"
	"errors"
	"net"

	"github.com/gocql/gocql"
)

// ReadUnavailable tells, for a read, a database that is down, overloaded or
// unreachable, where the client should retry, from a bug.
func ReadUnavailable(err error) bool {
	return unavailable(err, []error{gocql.ErrSessionClosed},
		gocql.ErrCodeUnavailable, gocql.ErrCodeReadTimeout, gocql.ErrCodeReadFailure, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping)
}

// WriteUnavailable tells, for a write, a database that is down, overloaded
// or unreachable, where the client should retry, from a bug.
func WriteUnavailable(err error) bool {
	return unavailable(err, nil,
		gocql.ErrCodeUnavailable, gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping, gocql.ErrCodeCASWriteUnknown, gocql.ErrCodeTruncate)
}

// unavailable is true for a deadline, a lost connection or host, a network
// error, one of also, or a server error with one of codes.
func unavailable(err error, also []error, codes ...int) bool {
	for _, e := range also {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		reqErr gocql.RequestError
		netErr net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, gocql.ErrNoConnections),
		errors.Is(err, gocql.ErrConnectionClosed),
		errors.Is(err, gocql.ErrTimeoutNoResponse),
		errors.Is(err, gocql.ErrHostDown),
		errors.As(err, &netErr):
		return true
	case errors.As(err, &reqErr):
		for _, c := range codes {
			if reqErr.Code() == c {
				return true
			}
		}
	}
	return false
}
