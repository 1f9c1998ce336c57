package httpapi

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"
)

// Fail answers err as a problem and is the one place an API decides what
// a failure means to its client: a *ProblemError is answered as itself; an
// error unavailable recognises (the database down, overloaded or
// unreachable) as 503, so that the client retries; anything else as 500,
// logged at error level with msg.
func Fail(w http.ResponseWriter, r *http.Request, logger zerolog.Logger, msg string, err error, unavailable func(error) bool) {
	var pe *ProblemError
	switch {
	case errors.As(err, &pe):
		WriteProblem(w, r, pe.Problem)
	case unavailable != nil && unavailable(err):
		AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "unavailable").AnErr("error", err) })
		WriteProblem(w, r, NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
			"the database did not answer in time; retry the request").WithCode("unavailable").Problem)
	default:
		AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "error").AnErr("error", err) })
		logger.Error().Err(err).Str("path", r.URL.Path).Str("correlation_id", CorrelationIDFrom(r.Context())).Msg(msg)
		WriteError(w, r, err)
	}
}
