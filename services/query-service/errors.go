package main

import (
	"errors"
	"net/http"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// fail answers err as a problem. This is the one place that decides what
// each failure means to the client.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *httpapi.ProblemError
	switch {
	case errors.As(err, &pe):
		httpapi.WriteProblem(w, r, pe.Problem)
	case cql.ReadUnavailable(err):
		httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "unavailable").AnErr("error", err) })
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
			"the database did not answer in time; retry the request").WithCode("unavailable").Problem)
	default:
		httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "error").AnErr("error", err) })
		a.logger.Error().Err(err).Str("path", r.URL.Path).Str("correlation_id", httpapi.CorrelationIDFrom(r.Context())).Msg("query failed")
		httpapi.WriteError(w, r, err)
	}
}

func notFound(what string, id gocql.UUID) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusNotFound, "not-found", "Not found", "there is no "+what+" with id "+id.String()).
		WithCode(what + ".not_found").WithField("id")
}
