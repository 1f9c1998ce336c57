package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// api answers the DLQ API over HTTP: it authorizes, decodes, calls one
// use case of the queue (app.go) and maps its outcome to a body.
type api struct {
	q      *queue
	cfg    DLQConfig
	token  httpapi.BearerToken // retries and purges need it
	logger zerolog.Logger
}

// newAPI builds the API over the dead-letter queue store and the event
// store's versions v; the dlq metrics are registered with reg.
func newAPI(store deadLetters, v versions, cfg DLQConfig, token string, logger zerolog.Logger, reg prometheus.Registerer) (*api, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &api{q: newQueue(store, v, cfg, logger, m), cfg: cfg, token: httpapi.NewBearerToken(token), logger: logger}, nil
}

// routes mounts the DLQ API; every route here is in openapi.json. Reads
// are open (inside the cluster); whatever changes the queue needs the
// bearer token.
func (a *api) routes(r chi.Router) {
	r.Get("/v1/dlq", a.list)
	r.Get("/v1/dlq/stats", a.stats)
	r.Get("/v1/dlq/{id}", a.get)
	r.Group(func(r chi.Router) {
		r.Use(a.authorize)
		r.Post("/v1/dlq/retry", a.retryBulk)
		r.Post("/v1/dlq/{id}/retry", a.retryOne)
		r.Delete("/v1/dlq", a.purgeBulk)
		r.Delete("/v1/dlq/{id}", a.purgeOne)
	})
	// The fixed paths beside /v1/dlq/{id} answer 405 for the methods they
	// do not serve, instead of handing them to {id} ("stats" as an id).
	httpapi.AllowOnly(r, "/v1/dlq/stats", http.MethodGet)
	httpapi.AllowOnly(r, "/v1/dlq/retry", http.MethodPost)
}

type actorKey struct{}

// authorize lets a request through only with the bearer token: 401 when it
// has none, 403 when it is wrong or no token is configured. Nothing of the
// request is read or done before.
func (a *api) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := a.token.Check(r); {
		case errors.Is(err, httpapi.ErrNoBearerToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderstream-dlq"`)
			a.fail(w, r, httpapi.NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
				"retries and purges need an Authorization: Bearer <token> header").WithCode("dlq.unauthorized"))
			return
		case err != nil:
			detail := "the bearer token is not the one this service accepts"
			if !a.token.Configured() {
				detail = "this service has no token configured (dlq.token or dlq.token_file), so it accepts no retries or purges"
			}
			httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "forbidden") })
			a.fail(w, r, httpapi.NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail).WithCode("dlq.forbidden"))
			return
		}
		actor, err := actorOf(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("actor", actor) })
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)))
	})
}

func actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// --- bodies -----------------------------------------------------------------

type entryBody struct {
	ID             string    `json:"id"`
	Component      string    `json:"component"`
	AggregateID    *string   `json:"aggregate_id"`
	AggregateType  string    `json:"aggregate_type,omitempty"`
	SequenceNumber int64     `json:"sequence_number,omitempty"`
	EventID        *string   `json:"event_id"`
	EventType      string    `json:"event_type,omitempty"`
	ErrorMessage   string    `json:"error_message"`
	FailureCount   int       `json:"failure_count"`
	ParksAggregate bool      `json:"parks_aggregate"`
	FirstFailedAt  time.Time `json:"first_failed_at"`
	LastFailedAt   time.Time `json:"last_failed_at"`
	CreatedAt      time.Time `json:"created_at"`
}

func idOrNull(id gocql.UUID) *string {
	if id == (gocql.UUID{}) {
		return nil
	}
	s := id.String()
	return &s
}

func entryOf(e deadletter.Entry) entryBody {
	return entryBody{
		ID: e.ID.String(), Component: e.Component, AggregateID: idOrNull(e.AggregateID), AggregateType: e.AggregateType,
		SequenceNumber: e.Sequence, EventID: idOrNull(e.EventID), EventType: e.EventType, ErrorMessage: e.Error,
		FailureCount: e.FailureCount, ParksAggregate: e.ParksAggregate,
		FirstFailedAt: e.FirstFailedAt.UTC(), LastFailedAt: e.LastFailedAt.UTC(), CreatedAt: e.CreatedAt.UTC(),
	}
}

type entryDetailBody struct {
	entryBody
	Payload      string   `json:"payload"`
	ErrorHistory []string `json:"error_history"`
	// Head says its aggregate is parked behind it for its component.
	Head bool `json:"head"`
	// WaitingEvents counts the aggregate's events after it (head only).
	WaitingEvents  *int64       `json:"waiting_events,omitempty"`
	PendingRequest *requestBody `json:"pending_request,omitempty"`
}

type requestBody struct {
	RequestID   string    `json:"request_id"`
	DLQID       string    `json:"dlq_id"`
	Action      string    `json:"action"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	Taken       bool      `json:"taken"`
}

// outcomeBody is the answer about one retry, skip or purge.
type outcomeBody struct {
	DLQID       string `json:"dlq_id"`
	Component   string `json:"component,omitempty"`
	AggregateID string `json:"aggregate_id,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
	Action      string `json:"action,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
	// Joined says a request for the same aggregate was pending already;
	// this is its outcome (two retries at once are one re-drive).
	Joined bool `json:"joined,omitempty"`
	// Status is succeeded, failed, gone or pending (the component did not
	// answer within dlq.retry_timeout; it still will), and in bulk answers
	// also purged, not_retriable, not_attempted or error.
	Status    string `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Applied   int64  `json:"applied"`
	Progress  int64  `json:"progress"`
	Head      int64  `json:"head"`
	HeadDLQID string `json:"head_dlq_id,omitempty"`
	// Purged says the dead letter is gone (purges only).
	Purged *bool `json:"purged,omitempty"`
}

// bulkBody is the answer of a bulk retry or purge.
type bulkBody struct {
	Matched      int  `json:"matched"`
	Requested    int  `json:"requested"`
	Succeeded    int  `json:"succeeded"`
	Failed       int  `json:"failed"`
	Gone         int  `json:"gone"`
	Pending      int  `json:"pending"`
	NotRetriable int  `json:"not_retriable"`
	NotAttempted int  `json:"not_attempted"`
	Purged       int  `json:"purged"`
	Complete     bool `json:"complete"`
	// Results has one outcome per matched dead letter, newest first.
	Results []outcomeBody `json:"results"`
}

// --- reads ------------------------------------------------------------------

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	p, err := parseList(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := a.q.List(r.Context(), p.filter, p.after, p.limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := struct {
		Entries       []entryBody `json:"entries"`
		NextPageToken string      `json:"next_page_token,omitempty"`
	}{Entries: make([]entryBody, 0, len(page.Entries))}
	for _, e := range page.Entries {
		body.Entries = append(body.Entries, entryOf(e))
	}
	if page.Next != (gocql.UUID{}) {
		body.NextPageToken = encodePageToken(page.Next)
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}

// entryID reads the {id} of the path.
func entryID(r *http.Request) (gocql.UUID, error) {
	return parseEntryID(chi.URLParam(r, "id"))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := entryID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d, err := a.q.Detail(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := entryDetailBody{entryBody: entryOf(d.Entry), Payload: d.Payload, ErrorHistory: d.ErrorHistory, Head: d.Head, WaitingEvents: d.WaitingEvents}
	if body.ErrorHistory == nil {
		body.ErrorHistory = []string{}
	}
	if req := d.Pending; req != nil {
		body.PendingRequest = &requestBody{RequestID: req.ID.String(), DLQID: req.DLQID.String(), Action: string(req.Action),
			RequestedBy: req.RequestedBy, RequestedAt: req.RequestedAt.UTC(), Taken: req.ClaimedBy != ""}
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}

type statsBody struct {
	Total                   int                `json:"total"`
	ByComponent             map[string]int     `json:"by_component"`
	ByEventType             map[string]int     `json:"by_event_type"`
	ByComponentAndEventType []deadletter.Count `json:"by_component_and_event_type"`
	Oldest                  *oldestBody        `json:"oldest"`
	ParkedAggregates        map[string]int     `json:"parked_aggregates"`
	ParkedTotal             int                `json:"parked_total"`
	PendingRetries          map[string]int     `json:"pending_retries"`
}

type oldestBody struct {
	ID            string    `json:"id"`
	Component     string    `json:"component"`
	EventType     string    `json:"event_type,omitempty"`
	FirstFailedAt time.Time `json:"first_failed_at"`
	AgeSeconds    float64   `json:"age_seconds"`
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.q.Stats(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := statsBody{
		Total: st.Total, ByComponent: st.ByComponent, ByEventType: st.ByEventType, ByComponentAndEventType: st.ByComponentAndType,
		ParkedAggregates: st.Parked, PendingRetries: st.PendingRetries,
	}
	if body.ByComponentAndEventType == nil {
		body.ByComponentAndEventType = []deadletter.Count{}
	}
	for _, n := range st.Parked {
		body.ParkedTotal += n
	}
	if st.Oldest.ID != (gocql.UUID{}) {
		body.Oldest = &oldestBody{ID: st.Oldest.ID.String(), Component: st.Oldest.Component, EventType: st.Oldest.EventType,
			FirstFailedAt: st.OldestFailedAt.UTC(), AgeSeconds: time.Since(st.OldestFailedAt).Seconds()}
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}

// --- retries ----------------------------------------------------------------

// outcomeOf is the body of an outcome.
func outcomeOf(o outcome) outcomeBody {
	b := outcomeBody{DLQID: o.DLQID.String(), Component: o.Component, Action: string(o.Action), RequestedBy: o.RequestedBy, Joined: o.Joined,
		Status: o.Status.String(), Detail: o.Detail, Applied: o.Applied, Progress: o.Progress, Head: o.Head, Purged: o.Purged}
	if o.RequestID != (gocql.UUID{}) {
		b.RequestID, b.AggregateID = o.RequestID.String(), o.AggregateID.String()
	}
	if o.HeadDLQID != (gocql.UUID{}) {
		b.HeadDLQID = o.HeadDLQID.String()
	}
	return b
}

func bulkOf(b bulk) bulkBody {
	body := bulkBody{Matched: b.Matched, Requested: b.Requested, Succeeded: b.Succeeded, Failed: b.Failed, Gone: b.Gone, Pending: b.Pending,
		NotRetriable: b.NotRetriable, NotAttempted: b.NotAttempted, Purged: b.Purged, Complete: b.Complete, Results: make([]outcomeBody, len(b.Results))}
	for i, o := range b.Results {
		body.Results[i] = outcomeOf(o)
	}
	return body
}

// statusOf is the HTTP status of an outcome: 202 while the component has
// not answered.
func statusOf(o outcome) int {
	if o.Status == statusPending {
		return http.StatusAccepted
	}
	return http.StatusOK
}

func (a *api) retryOne(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := entryID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.q.Retry(r.Context(), id, actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, statusOf(out), outcomeOf(out))
}

func (a *api) retryBulk(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	var in bulkRetryRequest
	if err := httpapi.DecodeJSON(r, w, 0, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := in.filter()
	if err == nil {
		err = wholeQueue(f, in.All)
	}
	limit := a.cfg.BulkMax
	if err == nil && in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > a.cfg.BulkMax {
			err = badParam("limit", "limit must be 1 to dlq.bulk_max ("+strconv.Itoa(a.cfg.BulkMax)+")")
		}
		limit = *in.Limit
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.q.RetryBulk(r.Context(), f, limit, actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, bulkOf(b))
}

// --- purges -----------------------------------------------------------------

func (a *api) purgeOne(w http.ResponseWriter, r *http.Request) {
	skip, err := parseSkip(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := entryID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out, err := a.q.Purge(r.Context(), id, skip, actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := outcomeOf(out)
	if out.Status == statusPurged {
		// A deleted dead letter is answered with its aggregate, the
		// zero id for input not tied to one.
		body.AggregateID = out.AggregateID.String()
	}
	httpapi.WriteJSON(w, statusOf(out), body)
}

func (a *api) purgeBulk(w http.ResponseWriter, r *http.Request) {
	p, err := parsePurge(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b, err := a.q.PurgeBulk(r.Context(), p.filter, p.skip, actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, bulkOf(b))
}
