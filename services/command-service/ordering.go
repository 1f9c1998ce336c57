package main

import (
	"context"
	"errors"
	"strings"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

// The cross-aggregate rules of the write side: a rule that reads one
// aggregate to decide a command of another cannot live in either's pure
// domain, and does not belong in a handler either. The handlers call these
// before they execute the command.

// customerStates gives a customer's current state (repository.Customers):
// with a state cache, a cached state checked against the stored version.
type customerStates interface {
	Current(ctx context.Context, id gocql.UUID) (customer.State, int64, error)
}

// ordering holds the rules of placing an order.
type ordering struct {
	customers customerStates
}

// CanOrder refuses an order for a customer who does not exist or was
// forgotten (validation errors of customer_id, 422; an order's id names no
// customer either) or is not ACTIVE (a conflict). It reads the customer's stored version
// and uses a cached state only at that version, else the customer's own
// stream: as current as the commit that follows. (The order's commit does
// not check the customer's version, so a cached state must not be trusted
// unchecked here.)
func (o ordering) CanOrder(ctx context.Context, customerID gocql.UUID) error {
	state, _, err := o.customers.Current(ctx, customerID)
	if _, ok := errors.AsType[*eventstore.WrongTypeError](err); ok {
		// The id is an order's: there is no customer with it.
		state, err = customer.State{}, nil
	}
	if err != nil {
		return err
	}
	if !state.Exists() {
		return domain.NewValidationError("order.customer_unknown", "customer_id", "there is no customer with this id")
	}
	if state.Forgotten {
		return domain.NewValidationError("order.customer_forgotten", "customer_id", "the customer asked to be forgotten and cannot place orders")
	}
	if state.Status != value.CustomerStatusActive {
		return domain.NewConflictError("order.customer_not_active", "the customer is "+strings.ToLower(state.Status.String())+" and cannot place orders")
	}
	return nil
}
