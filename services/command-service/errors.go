package main

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/personal"
)

// fail answers err as a problem and returns the outcome label for metrics
// and logs. This is the one place that decides what each failure means to
// the client.
func (a *api) fail(w http.ResponseWriter, r *http.Request, command string, err error) string {
	p, outcome := problemFor(err)
	httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) {
		e.Str("command", command).Str("outcome", outcome)
		if outcome == "error" || outcome == "unavailable" {
			e.AnErr("error", err)
		}
	})
	if outcome == "error" {
		a.logger.Error().Err(err).Str("command", command).Str("correlation_id", httpapi.CorrelationIDFrom(r.Context())).Msg("command failed")
	}
	httpapi.WriteProblem(w, r, p)
	return outcome
}

func problemFor(err error) (httpapi.Problem, string) {
	var (
		pe        *httpapi.ProblemError
		rule      *domain.RuleError
		conflict  *domain.ConflictError
		notFound  *domain.NotFoundError
		pre       *eventstore.PreconditionError
		race      *eventstore.ConflictError
		wrongType *eventstore.WrongTypeError
		taken     *idTakenError
		busy      *inProgressError
	)
	switch {
	case errors.As(err, &pe):
		return pe.Problem, "invalid"
	case customer.IsForgotten(err), errors.Is(err, personal.ErrForgotten):
		// Decide refuses a forgotten customer's commands; the keyring
		// refuses to seal for one whose key is gone before their
		// CustomerForgotten is recorded (a forget that died half-way).
		return problem(http.StatusGone, "customer-forgotten", "The customer was forgotten",
			"the customer asked to be forgotten; nothing can be changed or recorded about them any more", customer.CodeForgotten, ""), "gone"
	case errors.As(err, &rule):
		return problem(http.StatusUnprocessableEntity, "rule-broken", "The command breaks a rule", rule.Message, rule.Code, rule.Field), "rejected"
	case errors.As(err, &notFound):
		return problem(http.StatusNotFound, "not-found", "Not found", notFound.Message, notFound.Code, notFound.Field), "not_found"
	case errors.As(err, &conflict):
		return problem(http.StatusConflict, "state-conflict", "The command conflicts with the current state", conflict.Message, conflict.Code, ""), "conflict"
	case errors.As(err, &pre):
		p := problem(http.StatusPreconditionFailed, "version-mismatch", "Version mismatch",
			"the aggregate is not at the version named in If-Match; reload it and decide again", "version_mismatch", "If-Match")
		p.CurrentVersion = &pre.Actual
		return p, "precondition_failed"
	case errors.As(err, &busy):
		return problem(http.StatusConflict, "request-in-progress", "Request in progress",
			"a request with this Idempotency-Key is in progress; retry after Retry-After seconds, with the same key and body", "request-in-progress", "Idempotency-Key"), "in_progress"
	case errors.As(err, &wrongType):
		return problem(http.StatusNotFound, "not-found", "Not found",
			"there is no "+wrongType.Wanted+" with this id", wrongType.Wanted+".not_found", ""), "not_found"
	case errors.As(err, &taken):
		return problem(http.StatusConflict, "id-taken", "The id is taken",
			"the id belongs to a "+taken.actualType+"; choose another id or leave it out", "id_taken", taken.field), "conflict"
	case errors.As(err, &race):
		if race.ActualType != "" {
			return problem(http.StatusConflict, "id-taken", "The id is taken", "the id belongs to a "+race.ActualType, "id_taken", "id"), "conflict"
		}
		p := problem(http.StatusConflict, "concurrent-modification", "Concurrent modification",
			"other commands kept changing the aggregate while this one was retried; try again", "concurrent_modification", "")
		p.CurrentVersion = &race.Actual
		return p, "conflict"
	case cql.Unavailable(err):
		return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
			"the database did not answer in time; the command may be retried with the same Idempotency-Key", "unavailable", ""), "unavailable"
	default:
		return problem(http.StatusInternalServerError, "internal", "Internal error", "the command could not be processed", "internal", ""), "error"
	}
}

func problem(status int, slug, title, detail, code, field string) httpapi.Problem {
	p := httpapi.NewProblem(status, slug, title, detail).Problem
	p.Code, p.Field = code, field
	return p
}

// idTakenError says a creating command named an id that an aggregate of
// another type holds.
type idTakenError struct{ field, actualType string }

func (e *idTakenError) Error() string { return e.field + " belongs to a " + e.actualType }

// idTaken turns, for a creating command (idField set), an id held by
// another aggregate type into *idTakenError: found on load
// (*eventstore.WrongTypeError) or on commit (a *eventstore.ConflictError
// with ActualType). Other errors, and every error of other commands, pass
// through.
func idTaken(err error, idField string) error {
	if idField == "" {
		return err
	}
	if wt, ok := errors.AsType[*eventstore.WrongTypeError](err); ok {
		return &idTakenError{field: idField, actualType: wt.Actual}
	}
	if ce, ok := errors.AsType[*eventstore.ConflictError](err); ok && ce.ActualType != "" {
		return &idTakenError{field: idField, actualType: ce.ActualType}
	}
	return err
}
