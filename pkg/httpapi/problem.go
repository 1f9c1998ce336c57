// Package httpapi is the HTTP plumbing shared by the services that serve an
// API (command-service, query-service, dlq-service): RFC 9457 problem
// answers, strict JSON request decoding, the middleware every API router
// installs (correlation id, panic recovery, tracing, metrics, access log) and
// a server that drains in-flight requests on shutdown.
//
// A service builds its own chi router and installs the middleware in this
// order, outermost first, so that every inner layer sees the correlation id
// and the span, and a panic is answered after metrics and logs recorded it:
//
//	r.Use(httpapi.CorrelationID(), httpapi.Recoverer(logger),
//		httpapi.Tracing(tp, prop), metrics.Middleware(), httpapi.AccessLog(logger))
//	r.NotFound(httpapi.NotFound)
//	r.MethodNotAllowed(httpapi.MethodNotAllowed)
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// ProblemTypeBase prefixes the type URI of every orderstream problem; the
// slug after it is the stable name clients branch on.
const ProblemTypeBase = "https://orderstream.dev/problems/"

// Problem is an RFC 9457 problem detail, with extensions.
type Problem struct {
	// Type is "about:blank" or ProblemTypeBase followed by a slug.
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
	// Code is a stable machine code, e.g. "order.items_empty".
	Code string `json:"code,omitempty"`
	// Field names the offending field ("items[0].quantity"), header or
	// query parameter.
	Field         string `json:"field,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// CurrentVersion is the aggregate's version in 409 and 412 answers about
	// versions, so that the client can reload and decide again.
	CurrentVersion *int64 `json:"current_version,omitempty"`
}

// Slug returns the part of Type after ProblemTypeBase, or "" for a type
// outside it (such as "about:blank").
func (p Problem) Slug() string {
	s, ok := strings.CutPrefix(p.Type, ProblemTypeBase)
	if !ok {
		return ""
	}
	return s
}

// ProblemError is an error that carries the Problem to answer with.
type ProblemError struct{ Problem Problem }

// Error describes the problem for logs; clients see the Problem itself.
func (e *ProblemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Problem.Status, e.Problem.Title)
	if e.Problem.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Problem.Field)
	}
	if e.Problem.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Problem.Detail)
	}
	return b.String()
}

// NewProblem returns a problem of type ProblemTypeBase+slug whose code is
// the slug; WithCode sets a finer one (such as "order.items_empty").
func NewProblem(status int, slug, title, detail string) *ProblemError {
	return &ProblemError{Problem: Problem{Type: ProblemTypeBase + slug, Title: title, Status: status, Detail: detail, Code: slug}}
}

// WithField returns a copy of e naming field. It copies so that a problem
// kept in a package variable is never changed by one request.
func (e *ProblemError) WithField(field string) *ProblemError {
	c := *e
	c.Problem.Field = field
	return &c
}

// WithCode returns a copy of e with the machine code set.
func (e *ProblemError) WithCode(code string) *ProblemError {
	c := *e
	c.Problem.Code = code
	return &c
}

// WithCurrentVersion returns a copy of e carrying the aggregate's version.
func (e *ProblemError) WithCurrentVersion(v int64) *ProblemError {
	c := *e
	c.Problem.CurrentVersion = &v
	return &c
}

// MissingField is the 400 problem for a required field the request left out;
// Validate methods of request structs return it.
func MissingField(field string) *ProblemError {
	return NewProblem(http.StatusBadRequest, "missing-field", "Missing field",
		fmt.Sprintf("field %q is required", field)).WithField(field)
}

// WriteProblem answers with p as application/problem+json. It fills Code
// from the slug when it is empty, Instance
// with the request path and CorrelationID from the context when they are
// empty, and asks clients to retry a 503 after a second unless the handler
// set Retry-After itself.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Code == "" {
		// Every answer carries a code (the README promises it): the slug, or
		// for a problem outside ProblemTypeBase the status in words.
		if p.Code = p.Slug(); p.Code == "" {
			p.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(p.Status), " ", "-"))
		}
	}
	if p.Instance == "" && r != nil && r.URL != nil {
		p.Instance = r.URL.Path
	}
	if p.CorrelationID == "" && r != nil {
		p.CorrelationID = CorrelationIDFrom(r.Context())
	}
	h := w.Header()
	if p.Status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "1")
	}
	// Errors describe the state at one moment (a 404 for an order whose
	// projection has not caught up yet); a cache must not replay them.
	h.Set("Cache-Control", "no-store")
	writeBody(w, "application/problem+json", p.Status, p)
}

// internalProblem is what a client sees of any failure that is not a
// *ProblemError: nothing of the error itself, which may name hosts, tables or
// queries, but the correlation id to quote when reporting it.
func internalProblem() Problem {
	return NewProblem(http.StatusInternalServerError, "internal-error", "Internal error",
		"the request could not be processed; quote the correlation_id when reporting this").Problem
}

// WriteError answers err: a *ProblemError (also wrapped) with its problem,
// anything else with a generic 500 that does not show the error. Logging a
// 500 is the caller's job, since only it knows what failed.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *ProblemError
	if errors.As(err, &pe) {
		WriteProblem(w, r, pe.Problem)
		return
	}
	WriteProblem(w, r, internalProblem())
}

// WriteJSON answers v as application/json with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, "application/json", status, v)
}

// writeBody encodes v before writing the header, so that a value that
// cannot be encoded becomes a 500 instead of a half-written 200.
func writeBody(w http.ResponseWriter, contentType string, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(internalProblem())
		contentType, status = "application/problem+json", http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// NotFound answers a request no route matches; install it with
// router.NotFound.
func NotFound(w http.ResponseWriter, r *http.Request) {
	markUnmatched(r)
	WriteProblem(w, r, NewProblem(http.StatusNotFound, "not-found", "Not found",
		"no resource exists at this path").Problem)
}

// markUnmatched forgets the patterns chi collected on its way into a
// subrouter (a 404 under /v1 leaves "/v1/*"), so that metrics, logs and span
// names label the request "unmatched" instead of as the subrouter's prefix.
// chi resets the context after the request, so nothing else reads it.
func markUnmatched(r *http.Request) {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		rctx.RoutePatterns = rctx.RoutePatterns[:0]
	}
}

// allowProbe lists the methods tried to build the Allow header of a 405.
var allowProbe = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// MethodNotAllowed answers a request whose path exists for other methods;
// install it with router.MethodNotAllowed. chi does not hand a custom 405
// handler the allowed methods, so they are found again from the router, for
// the Allow header RFC 9110 requires.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	markUnmatched(r)
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.Routes != nil {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		var allowed []string
		for _, m := range allowProbe {
			if rctx.Routes.Find(chi.NewRouteContext(), m, path) != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
		}
	}
	WriteProblem(w, r, methodNotAllowed(r))
}

func methodNotAllowed(r *http.Request) Problem {
	return NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		fmt.Sprintf("method %s is not allowed at this path", methodLabel(r.Method))).Problem
}
