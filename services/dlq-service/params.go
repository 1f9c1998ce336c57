package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// Page sizes of the listing.
const (
	defaultLimit = 50
	maxLimit     = 500
	// maxText bounds a component name or an event type in a filter.
	maxText = 200
)

// badParam is the 400 answer naming the query parameter (or field) at
// fault.
func badParam(name, detail string) *httpapi.ProblemError {
	return httpapi.BadParameter("dlq.invalid_parameter", name, detail)
}

// query reads the query string of one request. Unknown and repeated
// parameters are refused, so that a misspelt filter is an error rather than
// a silently wider listing, retry or purge.
type query struct{ v url.Values }

func parseQuery(raw string, allowed ...string) (query, error) {
	v, err := httpapi.ParseQuery(raw, "dlq.invalid_parameter", allowed...)
	return query{v: v}, err
}

func (q query) has(name string) bool   { return q.v.Has(name) }
func (q query) get(name string) string { return q.v.Get(name) }
func (q query) value(name string) *string {
	if !q.has(name) {
		return nil
	}
	s := q.get(name)
	return &s
}

// boolean reads an optional true/false (false when absent).
func (q query) boolean(name string) (bool, error) {
	if !q.has(name) {
		return false, nil
	}
	switch q.get(name) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badParam(name, name+" must be true or false")
}

// filterInput is a filter as a client gives it: query parameters or the
// fields of a bulk retry's body.
type filterInput struct {
	Component   *string `json:"component"`
	EventType   *string `json:"event_type"`
	AggregateID *string `json:"aggregate_id"`
	Since       *string `json:"since"`
	Until       *string `json:"until"`
}

func (q query) filterInput() filterInput {
	return filterInput{Component: q.value("component"), EventType: q.value("event_type"), AggregateID: q.value("aggregate_id"), Since: q.value("since"), Until: q.value("until")}
}

// filter checks the input and builds the filter.
func (in filterInput) filter() (deadletter.Filter, error) {
	var (
		f   deadletter.Filter
		err error
	)
	if in.Component != nil {
		if f.Component, err = text("component", *in.Component); err != nil {
			return f, err
		}
	}
	if in.EventType != nil {
		if f.EventType, err = text("event_type", *in.EventType); err != nil {
			return f, err
		}
	}
	if in.AggregateID != nil {
		if f.AggregateID, err = parseUUID(*in.AggregateID, "aggregate_id"); err != nil {
			return f, err
		}
	}
	if in.Since != nil {
		if f.Since, err = instant("since", *in.Since); err != nil {
			return f, err
		}
	}
	if in.Until != nil {
		if f.Until, err = instant("until", *in.Until); err != nil {
			return f, err
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, badParam("until", "until must not be earlier than since")
	}
	return f, nil
}

// text checks a component name or event type: 1 to maxText characters,
// none of them a control character, a line separator, a bidirectional
// control, a byte-order mark or U+FFFD (openapi.json has the same as a
// pattern).
func text(name, s string) (string, error) {
	if s == "" || utf8.RuneCountInString(s) > maxText {
		return "", badParam(name, fmt.Sprintf("%s must be 1 to %d characters", name, maxText))
	}
	for _, r := range s {
		if forbiddenRune(r) {
			return "", badParam(name, name+" must be text without control characters")
		}
	}
	return s, nil
}

func forbiddenRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= '\u202A' && r <= '\u202E') ||
		(r >= '\u2066' && r <= '\u2069') || r == '\uFEFF' || r == unicode.ReplacementChar
}

// Timeuuids hold 60-bit timestamps from 1582 on; a bound outside the years
// a dead letter can have is moved to the nearest of them, which selects the
// same dead letters, instead of wrapping around.
var (
	earliest = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latest   = time.Date(5000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// instant reads an RFC 3339 date-time, as JSON Schema's date-time format
// has it: "t" and "z" in either case, and a leap second (read as the
// second before it).
func instant(name, s string) (time.Time, error) {
	norm := strings.ToUpper(s)
	if len(norm) >= 19 && norm[10] == 'T' && norm[17:19] == "60" {
		norm = norm[:17] + "59" + norm[19:]
	}
	t, err := time.Parse(time.RFC3339Nano, norm)
	if err != nil {
		return time.Time{}, badParam(name, name+" must be an RFC 3339 date-time, such as 2025-01-31T12:00:00Z")
	}
	t = t.UTC()
	switch {
	case t.Before(earliest):
		return earliest, nil
	case t.After(latest):
		return latest, nil
	}
	return t, nil
}

// parseUUID reads a UUID in any case.
func parseUUID(s, field string) (gocql.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u == uuid.Nil {
		return gocql.UUID{}, httpapi.NewProblem(http.StatusBadRequest, "invalid-id", "Invalid id",
			field+" must be a UUID such as 0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11").WithField(field).WithCode("dlq.invalid_id")
	}
	return gocql.UUID(u), nil
}

// parseEntryID reads a dead letter's id: a time-based (version 1) UUID.
func parseEntryID(s string) (gocql.UUID, error) {
	id, err := parseUUID(s, "id")
	if err == nil && id.Version() != 1 {
		err = httpapi.NewProblem(http.StatusBadRequest, "invalid-id", "Invalid id",
			"id must be a dead letter's id, a time-based (version 1) UUID").WithField("id").WithCode("dlq.invalid_id")
	}
	return id, err
}

// listParams are the parameters of GET /v1/dlq.
type listParams struct {
	filter deadletter.Filter
	limit  int
	after  gocql.UUID // from the page token; zero: the first page
}

func parseList(raw string) (listParams, error) {
	q, err := parseQuery(raw, "component", "event_type", "aggregate_id", "since", "until", "limit", "page_token")
	if err != nil {
		return listParams{}, err
	}
	var p listParams
	if p.filter, err = q.filterInput().filter(); err != nil {
		return p, err
	}
	p.limit = defaultLimit
	if q.has("limit") {
		n, err := strconv.Atoi(q.get("limit"))
		if err != nil || n < 1 || n > maxLimit {
			return p, badParam("limit", fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
		}
		p.limit = n
	}
	if q.has("page_token") {
		if p.after, err = decodePageToken(q.get("page_token")); err != nil {
			return p, err
		}
	}
	return p, nil
}

// A page token is the id the next page starts after: it says nothing a
// listing does not show, so it is not signed; any version-1 UUID is a
// valid place to start from.
func encodePageToken(after gocql.UUID) string {
	return base64.RawURLEncoding.EncodeToString(after[:])
}

func decodePageToken(s string) (gocql.UUID, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	var id gocql.UUID
	if err == nil && len(raw) == len(id) {
		copy(id[:], raw)
		if id.Version() == 1 {
			return id, nil
		}
	}
	return gocql.UUID{}, badParam("page_token", "page_token must be a next_page_token of an earlier answer")
}

// purgeParams are the parameters of DELETE /v1/dlq.
type purgeParams struct {
	filter deadletter.Filter
	skip   bool
}

func parsePurge(raw string) (purgeParams, error) {
	q, err := parseQuery(raw, "component", "event_type", "aggregate_id", "since", "until", "skip", "all")
	if err != nil {
		return purgeParams{}, err
	}
	var p purgeParams
	if p.filter, err = q.filterInput().filter(); err != nil {
		return p, err
	}
	if p.skip, err = q.boolean("skip"); err != nil {
		return p, err
	}
	all, err := q.boolean("all")
	if err != nil {
		return p, err
	}
	if err := wholeQueue(p.filter, all); err != nil {
		return p, err
	}
	return p, nil
}

// wholeQueue refuses a bulk call without a filter unless all=true says
// the whole queue is meant.
func wholeQueue(f deadletter.Filter, all bool) error {
	if f.IsZero() && !all {
		return badParam("all", "give a filter (component, event_type, aggregate_id, since, until), or all=true to act on every dead letter")
	}
	if !f.IsZero() && all {
		return badParam("all", "all=true acts on every dead letter; it cannot be combined with a filter")
	}
	return nil
}

func parseSkip(raw string) (bool, error) {
	q, err := parseQuery(raw, "skip")
	if err != nil {
		return false, err
	}
	return q.boolean("skip")
}

// bulkRetryRequest is the body of POST /v1/dlq/retry.
type bulkRetryRequest struct {
	filterInput
	All   bool `json:"all"`
	Limit *int `json:"limit"`
}

// actorOf is who asks, for the logs and the retry requests: the
// X-Requested-By header (the token is shared, so this is the caller's own
// word), or "unnamed".
func actorOf(r *http.Request) (string, error) {
	a := r.Header.Get("X-Requested-By")
	if a == "" {
		return "unnamed", nil
	}
	if len(a) > 100 {
		return "", badParam("X-Requested-By", "X-Requested-By must be at most 100 bytes")
	}
	for _, c := range a {
		if c < 0x20 || c > 0x7e {
			return "", badParam("X-Requested-By", "X-Requested-By must be printable ASCII")
		}
	}
	return a, nil
}
