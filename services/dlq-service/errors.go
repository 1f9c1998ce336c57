package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// fail answers err as a problem (httpapi.Fail), the refusals of the use
// cases as their own problems.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.Fail(w, r, a.logger, "dlq request failed", problemOf(err), cql.Unavailable)
}

// problemOf maps a refusal of the use cases (app.go) to its problem;
// other errors are left as they are.
func problemOf(err error) error {
	var (
		nf errNotFound
		nr errNotRetriable
		ph errParkedHead
		hs errParkedHeads
	)
	switch {
	case errors.As(err, &nf):
		return notFound(nf.id)
	case errors.As(err, &nr):
		return notRetriable(nr.e)
	case errors.As(err, &ph):
		return parkedHead(ph.e)
	case errors.As(err, &hs):
		return parkedHeads(hs.heads, hs.matched)
	}
	return err
}

func notFound(id gocql.UUID) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusNotFound, "not-found", "Not found", "there is no dead letter with id "+id.String()+" (a retry or purge may have resolved it)").
		WithCode("dlq.not_found").WithField("id")
}

func notRetriable(e deadletter.Entry) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusConflict, "not-retriable", "Not retriable",
		fmt.Sprintf("dead letter %s is input %s could not tie to an event (no aggregate, nothing parked): there is nothing to re-drive; read its payload and purge it", e.ID, e.Component)).
		WithCode("dlq.not_retriable")
}

func parkedHead(e deadletter.Entry) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusConflict, "parked-head", "Head of a parked aggregate",
		fmt.Sprintf("dead letter %s holds back aggregate %s for %s: deleting it alone would let the events behind it overtake sequence %d. Retry it (POST /v1/dlq/%s/retry), or purge it with skip=true, which moves %s past sequence %d without processing it and then re-drives the events after it",
			e.ID, e.AggregateID, e.Component, e.Sequence, e.ID, e.Component, e.Sequence)).WithCode("dlq.parked_head")
}

func parkedHeads(heads, matched int) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusConflict, "parked-head", "Heads of parked aggregates",
		fmt.Sprintf("%d of the %d dead letters the filter matches hold back their parked aggregates; nothing was purged. Retry them, narrow the filter, or add skip=true to move their components past their events", heads, matched)).
		WithCode("dlq.parked_head")
}
