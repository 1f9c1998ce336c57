package main

import (
	"context"
	"errors"
	"testing"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// loadedCustomer is a customer repository that answers one read of the
// current state.
type loadedCustomer struct {
	state customer.State
	err   error
}

func (l loadedCustomer) Current(context.Context, gocql.UUID) (customer.State, int64, error) {
	return l.state, l.state.Version, l.err
}

// An order needs an existing, ACTIVE customer: the rule without a
// database or a server.
func TestCanOrder(t *testing.T) {
	id := gocql.TimeUUID()
	with := func(s value.CustomerStatus) customer.State {
		return customer.State{ID: id.String(), Status: s, Version: 3}
	}
	down := errors.New("the database did not answer")
	cases := []struct {
		name     string
		load     loadedCustomer
		rule     string // the RuleError's code, if any
		conflict string // the ConflictError's code, if any
		err      error  // passed through as it is
	}{
		{name: "active", load: loadedCustomer{state: with(value.CustomerStatusActive)}},
		{name: "no such customer", load: loadedCustomer{}, rule: "order.customer_unknown"},
		{name: "an order's id", load: loadedCustomer{err: &eventstore.WrongTypeError{AggregateID: id, Actual: "order", Wanted: "customer"}}, rule: "order.customer_unknown"},
		{name: "suspended", load: loadedCustomer{state: with(value.CustomerStatusSuspended)}, conflict: "order.customer_not_active"},
		{name: "deactivated", load: loadedCustomer{state: with(value.CustomerStatusDeactivated)}, conflict: "order.customer_not_active"},
		{name: "load fails", load: loadedCustomer{err: down}, err: down},
		// Forgotten comes before the status: an ACTIVE customer can be forgotten.
		{name: "forgotten", load: loadedCustomer{state: customer.State{ID: id.String(), Status: value.CustomerStatusActive, Forgotten: true, Version: 4}}, rule: "order.customer_forgotten"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ordering{customers: tc.load}.CanOrder(context.Background(), id)
			switch {
			case tc.rule != "":
				var re *domain.RuleError
				require.ErrorAs(t, err, &re)
				require.Equal(t, tc.rule, re.Code)
				require.Equal(t, "customer_id", re.Field)
			case tc.conflict != "":
				var ce *domain.ConflictError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, tc.conflict, ce.Code)
				require.Contains(t, ce.Message, "the customer is ")
			case tc.err != nil:
				require.ErrorIs(t, err, tc.err)
			default:
				require.NoError(t, err)
			}
		})
	}
}
