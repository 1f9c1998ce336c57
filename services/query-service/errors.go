package main

import (
	"net/http"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// fail answers err as a problem (httpapi.Fail).
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.Fail(w, r, a.logger, "query failed", err, cql.ReadUnavailable)
}

func notFound(what string, id gocql.UUID) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusNotFound, "not-found", "Not found", "there is no "+what+" with id "+id.String()).
		WithCode(what + ".not_found").WithField("id")
}
