package main

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// Page sizes of the listings.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// badParam is the 400 answer naming the query parameter (or path
// parameter) at fault.
func badParam(name, detail string) *httpapi.ProblemError {
	return httpapi.BadParameter("query.invalid_parameter", name, detail)
}

// query reads the query string of one request. Unknown and repeated
// parameters are refused, so that a misspelt filter is an error rather than
// a silently unfiltered answer.
type query struct{ v url.Values }

func parseQuery(raw string, allowed ...string) (query, error) {
	v, err := httpapi.ParseQuery(raw, "query.invalid_parameter", allowed...)
	return query{v: v}, err
}

func (q query) has(name string) bool { return q.v.Has(name) }
func (q query) get(name string) string {
	return q.v.Get(name)
}

// integerForm is an integer as JSON writes it, the form openapi.json's
// integer parameters have: strconv.ParseInt alone would also take "+1"
// and "01".
var integerForm = regexp.MustCompile(`^-?(?:0|[1-9][0-9]*)$`)

// integer reads an optional integer ≥ lowest (0 when absent).
func (q query) integer(name string, lowest int64) (int64, error) {
	if !q.has(name) {
		return 0, nil
	}
	n, err := strconv.ParseInt(q.get(name), 10, 64)
	if err != nil || !integerForm.MatchString(q.get(name)) || n < lowest {
		return 0, badParam(name, fmt.Sprintf("%s must be an integer of at least %d", name, lowest))
	}
	return n, nil
}

func (q query) limit() (int, error) {
	if !q.has("limit") {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(q.get("limit"))
	if err != nil || !integerForm.MatchString(q.get("limit")) || n < 1 || n > maxLimit {
		return 0, badParam("limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
	}
	return n, nil
}

// instantPattern is the form of the times the listings accept, the
// pattern of CreatedAfter and CreatedBefore in openapi.json: RFC 3339 with
// an upper-case T and Z, at most nanoseconds, no leap second, offsets
// below 24 hours. time.Parse alone would also take a comma before the
// fraction and a 24-hour offset.
const instantPattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$`

var instantForm = regexp.MustCompile(instantPattern)

// instant reads an optional RFC 3339 time (zero when absent).
func (q query) instant(name string) (time.Time, error) {
	if !q.has(name) {
		return time.Time{}, nil
	}
	raw := q.get(name)
	// Years 0000 to 9999 are milliseconds since 1970 well within the int64
	// of a CQL timestamp.
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil || !instantForm.MatchString(raw) {
		return time.Time{}, badParam(name, name+" must be an RFC 3339 time such as 2025-01-31T12:00:00Z")
	}
	return t.UTC(), nil
}

// byIDParams are the parameters of GET /v1/{orders,customers}/{id}.
type byIDParams struct {
	atVersion  int64 // 0: now
	minVersion int64 // 0: no wait
}

func parseByID(raw string) (byIDParams, error) {
	q, err := parseQuery(raw, "at_version", "min_version")
	if err != nil {
		return byIDParams{}, err
	}
	var p byIDParams
	if p.atVersion, err = q.integer("at_version", 1); err != nil {
		return p, err
	}
	if p.minVersion, err = q.integer("min_version", 1); err != nil {
		return p, err
	}
	if p.atVersion > 0 && p.minVersion > 0 {
		// at_version reads event_store, which is never behind.
		return p, badParam("min_version", "min_version cannot be combined with at_version, which reads the event store and is never behind")
	}
	return p, nil
}

// listParams are the parameters of the order listings.
type listParams struct {
	limit         int
	pageToken     string
	after, before time.Time // exclusive bounds on created_at; zero: none
}

func parseList(q query) (listParams, error) {
	var (
		p   listParams
		err error
	)
	if p.limit, err = q.limit(); err != nil {
		return p, err
	}
	if p.after, err = q.instant("created_after"); err != nil {
		return p, err
	}
	if p.before, err = q.instant("created_before"); err != nil {
		return p, err
	}
	if !p.after.IsZero() && !p.before.IsZero() && !p.before.After(p.after) {
		return p, badParam("created_before", "created_before must be later than created_after")
	}
	if q.has("page_token") {
		if p.pageToken = q.get("page_token"); p.pageToken == "" {
			return p, badParam("page_token", "page_token must be a next_page_token of an earlier answer")
		}
	}
	return p, nil
}

// scope is what a listing's page tokens are bound to besides its name and
// key: the filters, at the millisecond precision CQL compares them at.
func (p listParams) scope(listing, key string) string {
	ms := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return listing + "/" + key + "/" + ms(p.after) + "/" + ms(p.before)
}

func parseCustomerOrders(raw string) (listParams, error) {
	q, err := parseQuery(raw, "limit", "page_token", "created_after", "created_before")
	if err != nil {
		return listParams{}, err
	}
	return parseList(q)
}

func parseStatusOrders(raw string) (value.OrderStatus, listParams, error) {
	q, err := parseQuery(raw, "status", "limit", "page_token", "created_after", "created_before")
	if err != nil {
		return 0, listParams{}, err
	}
	if !q.has("status") {
		return 0, listParams{}, badParam("status", "status is required: one of CREATED, CONFIRMED, SHIPPED, DELIVERED, CANCELLED")
	}
	given := q.get("status")
	status, err := value.ParseOrderStatus(given)
	// ParseOrderStatus trims spaces; a query parameter has none to trim.
	if err != nil || given != strings.TrimSpace(given) {
		return 0, listParams{}, badParam("status", "status must be one of CREATED, CONFIRMED, SHIPPED, DELIVERED, CANCELLED, in any letter case")
	}
	p, err := parseList(q)
	return status, p, err
}

// historyParams are the parameters of GET /v1/{orders,customers}/{id}/events.
type historyParams struct {
	limit     int
	after     int64 // the sequence the page starts after
	pageToken string
}

func parseHistory(raw string) (historyParams, error) {
	q, err := parseQuery(raw, "limit", "after_sequence", "page_token")
	if err != nil {
		return historyParams{}, err
	}
	var p historyParams
	if p.limit, err = q.limit(); err != nil {
		return p, err
	}
	if p.after, err = q.integer("after_sequence", 0); err != nil {
		return p, err
	}
	if q.has("page_token") {
		if q.has("after_sequence") {
			return p, badParam("page_token", "give either page_token or after_sequence, not both")
		}
		if p.pageToken = q.get("page_token"); p.pageToken == "" {
			return p, badParam("page_token", "page_token must be a next_page_token of an earlier answer")
		}
	}
	// after+limit is computed; keep it far from overflowing.
	if p.after > math.MaxInt64/2 {
		return p, badParam("after_sequence", "after_sequence is out of range")
	}
	return p, nil
}

// parseID reads a UUID in any case, as the command API does.
func parseID(s, field string) (gocql.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u == uuid.Nil {
		return gocql.UUID{}, httpapi.NewProblem(http.StatusBadRequest, "invalid-id", "Invalid id",
			field+" must be a UUID such as 0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11").WithField(field).WithCode("query.invalid_id")
	}
	return gocql.UUID(u), nil
}
