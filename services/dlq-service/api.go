package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// api answers the DLQ API over HTTP.
type api struct {
	session  *gocql.Session
	cfg      DLQConfig
	token    [sha256.Size]byte // of the bearer token, compared in constant time
	hasToken bool
	limiter  *rate.Limiter // of the bulk calls' requests, shared by all of them
	logger   zerolog.Logger
	m        *dlqMetrics
}

func newAPI(session *gocql.Session, cfg DLQConfig, token string, logger zerolog.Logger, reg prometheus.Registerer) (*api, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	a := &api{session: session, cfg: cfg, logger: logger, m: m, limiter: rate.NewLimiter(rate.Limit(cfg.BulkRate), cfg.BulkBurst)}
	if token != "" {
		a.token, a.hasToken = sha256.Sum256([]byte(token)), true
	}
	return a, nil
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
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderstream-dlq"`)
			a.fail(w, r, httpapi.NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
				"retries and purges need an Authorization: Bearer <token> header").WithCode("dlq.unauthorized"))
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !a.hasToken || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			detail := "the bearer token is not the one this service accepts"
			if !a.hasToken {
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
	page, err := deadletter.List(r.Context(), a.session, p.filter, p.after, p.limit)
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

// entry reads the {id} of the path (and refuses any query parameter but
// those allowed) and the dead letter; on failure it answers and returns
// false.
func (a *api) entry(w http.ResponseWriter, r *http.Request) (deadletter.Entry, bool) {
	id, err := parseEntryID(chi.URLParam(r, "id"))
	if err != nil {
		a.fail(w, r, err)
		return deadletter.Entry{}, false
	}
	e, found, err := deadletter.Get(r.Context(), a.session, id)
	if err == nil && !found {
		err = notFound(id)
	}
	if err != nil {
		a.fail(w, r, err)
		return deadletter.Entry{}, false
	}
	return e, true
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	e, ok := a.entry(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	body := entryDetailBody{entryBody: entryOf(e), Payload: e.Payload, ErrorHistory: e.ErrorHistory}
	if body.ErrorHistory == nil {
		body.ErrorHistory = []string{}
	}
	if e.ParksAggregate && e.AggregateID != (gocql.UUID{}) {
		head, err := deadletter.IsHead(ctx, a.session, e)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		body.Head = head
		if head {
			var current int64
			err := a.session.Query(`SELECT current_sequence FROM event_store WHERE aggregate_id = ? LIMIT 1`, e.AggregateID).WithContext(ctx).Scan(&current)
			if err != nil && !errors.Is(err, gocql.ErrNotFound) {
				a.fail(w, r, err)
				return
			}
			waiting := max(current-e.Sequence, 0)
			body.WaitingEvents = &waiting
		}
		req, pending, err := deadletter.PendingFor(ctx, a.session, e.Component, e.AggregateID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if pending {
			body.PendingRequest = &requestBody{RequestID: req.ID.String(), DLQID: req.DLQID.String(), Action: string(req.Action),
				RequestedBy: req.RequestedBy, RequestedAt: req.RequestedAt.UTC(), Taken: req.ClaimedBy != ""}
		}
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
	st, err := deadletter.ReadStats(r.Context(), a.session)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.m.set(st)
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

// retriable reports whether a dead letter can be re-driven: an event that
// parks its aggregate (input that could not be tied to one cannot).
func retriable(s deadletter.Summary) bool {
	return s.ParksAggregate && s.AggregateID != (gocql.UUID{})
}

// redrive asks s's component to re-drive its aggregate (action retry or
// skip) and waits up to wait for the outcome. A request already pending
// for that aggregate is joined rather than repeated.
func (a *api) redrive(ctx context.Context, s deadletter.Summary, action deadletter.Action, who string, wait time.Duration) (outcomeBody, error) {
	req, created, err := deadletter.Submit(ctx, a.session, deadletter.Request{Component: s.Component, AggregateID: s.AggregateID, DLQID: s.ID, Action: action, RequestedBy: who})
	if err != nil {
		return outcomeBody{}, err
	}
	if created {
		a.m.requested.WithLabelValues(s.Component, string(action)).Inc()
	}
	out := outcomeBody{DLQID: req.DLQID.String(), Component: req.Component, AggregateID: req.AggregateID.String(), RequestID: req.ID.String(),
		Action: string(req.Action), RequestedBy: req.RequestedBy, Joined: !created, Status: "pending"}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	res, found, err := deadletter.AwaitResult(wctx, a.session, req.ID, a.cfg.PollEvery)
	if err != nil {
		return out, err
	}
	if !found {
		out.Detail = "the component has not answered yet; it carries the request out when it reads it (watch GET /v1/dlq/" + out.DLQID + ")"
		if created {
			a.m.unresolved.WithLabelValues(s.Component, string(action), "pending").Inc()
		}
		return out, nil
	}
	out.Status, out.Detail, out.Applied, out.Progress, out.Head = res.Status, res.Detail, res.Applied, res.Progress, res.Head
	if res.HeadDLQID != (gocql.UUID{}) {
		out.HeadDLQID = res.HeadDLQID.String()
	}
	if created {
		switch res.Status {
		case deadletter.StatusSucceeded:
			a.m.succeeded.WithLabelValues(s.Component, string(action)).Inc()
		case deadletter.StatusFailed:
			a.m.failed.WithLabelValues(s.Component, string(action)).Inc()
		default:
			a.m.unresolved.WithLabelValues(s.Component, string(action), res.Status).Inc()
		}
	}
	return out, nil
}

func statusOf(out outcomeBody) int {
	if out.Status == "pending" {
		return http.StatusAccepted
	}
	return http.StatusOK
}

func (a *api) retryOne(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		a.fail(w, r, err)
		return
	}
	e, ok := a.entry(w, r)
	if !ok {
		return
	}
	if !retriable(e.Summary()) {
		a.fail(w, r, notRetriable(e))
		return
	}
	who := actor(r.Context())
	a.logger.Info().Str("actor", who).Str("dlq_id", e.ID.String()).Str("component", e.Component).Str("aggregate_id", e.AggregateID.String()).
		Int64("sequence", e.Sequence).Msg("retry of a dead letter requested")
	out, err := a.redrive(r.Context(), e.Summary(), deadletter.ActionRetry, who, a.cfg.RetryTimeout)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, statusOf(out), out)
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
	sums, err := deadletter.Summaries(r.Context(), a.session, f, gocql.UUID{}, limit+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := bulkBody{Complete: len(sums) <= limit}
	sums = sums[:min(len(sums), limit)]
	body.Matched = len(sums)
	body.Results = make([]outcomeBody, len(sums))
	var todo []int
	for i, s := range sums {
		if retriable(s) {
			todo = append(todo, i)
			continue
		}
		body.Results[i] = outcomeBody{DLQID: s.ID.String(), Component: s.Component, Status: "not_retriable",
			Detail: "input not tied to an event: nothing to re-drive; purge it"}
		body.NotRetriable++
	}
	who := actor(r.Context())
	a.logger.Info().Str("actor", who).Interface("filter", in).Int("matched", len(sums)).Int("retriable", len(todo)).Msg("bulk retry requested")
	a.bulk(r.Context(), sums, todo, deadletter.ActionRetry, who, &body)
	body.Complete = body.Complete && body.NotAttempted == 0
	a.logger.Info().Str("actor", who).Int("succeeded", body.Succeeded).Int("failed", body.Failed).Int("pending", body.Pending).
		Int("not_attempted", body.NotAttempted).Msg("bulk retry done")
	httpapi.WriteJSON(w, http.StatusOK, body)
}

// bulk sends the requests of sums[todo...], started at the rate of the
// shared limiter with at most BulkParallelism awaiting their outcome, for
// at most BulkTimeout, and counts the outcomes into body.
func (a *api) bulk(ctx context.Context, sums []deadletter.Summary, todo []int, action deadletter.Action, who string, body *bulkBody) {
	deadline := time.Now().Add(a.cfg.BulkTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, a.cfg.BulkParallelism)
	)
	record := func(i int, out outcomeBody) {
		mu.Lock()
		defer mu.Unlock()
		body.Results[i] = out
		switch out.Status {
		case deadletter.StatusSucceeded:
			body.Succeeded++
		case deadletter.StatusFailed, "error":
			body.Failed++
		case deadletter.StatusGone:
			body.Gone++
		case "pending":
			body.Pending++
		case "not_attempted":
			body.NotAttempted++
		}
		if out.Status != "not_attempted" && out.Status != "error" {
			body.Requested++
		}
		if out.Purged != nil && *out.Purged {
			body.Purged++
		}
	}
	for n, i := range todo {
		s := sums[i]
		started := a.limiter.Wait(ctx) == nil
		if started {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				started = false
			}
		}
		if !started {
			for _, j := range todo[n:] {
				record(j, outcomeBody{DLQID: sums[j].ID.String(), Component: sums[j].Component, Status: "not_attempted",
					Detail: "dlq.bulk_timeout was reached first; repeat the call"})
			}
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out, err := a.redrive(ctx, s, action, who, min(a.cfg.RetryTimeout, time.Until(deadline)))
			if err != nil {
				a.logger.Warn().Err(err).Str("dlq_id", s.ID.String()).Msg("bulk request failed")
				out = outcomeBody{DLQID: s.ID.String(), Component: s.Component, Status: "error", Detail: "the request could not be written or read: the database did not answer"}
			}
			if action == deadletter.ActionSkip {
				purged := out.Status != "pending" && out.Status != "error" && (out.Status == deadletter.StatusGone || out.Progress >= s.Sequence)
				out.Purged = &purged
			}
			record(i, out)
		})
	}
	wg.Wait()
}

// --- purges -----------------------------------------------------------------

func (a *api) purgeOne(w http.ResponseWriter, r *http.Request) {
	skip, err := parseSkip(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	e, ok := a.entry(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	who := actor(ctx)
	head, err := deadletter.IsHead(ctx, a.session, e)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	log := a.logger.Warn().Str("actor", who).Str("dlq_id", e.ID.String()).Str("component", e.Component).Str("event_type", e.EventType).
		Str("aggregate_id", e.AggregateID.String()).Int64("sequence", e.Sequence).Bool("skip", skip)
	switch {
	case head && !skip:
		a.fail(w, r, parkedHead(e))
	case head:
		out, err := a.redrive(ctx, e.Summary(), deadletter.ActionSkip, who, a.cfg.RetryTimeout)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		purged := out.Status == deadletter.StatusGone || (out.Status != "pending" && out.Progress >= e.Sequence)
		out.Purged = &purged
		if purged {
			a.m.purged.WithLabelValues(e.Component, "skip").Inc()
		}
		log.Str("status", out.Status).Bool("purged", purged).Msg("purge of the head of a parked aggregate: its component moves past it")
		httpapi.WriteJSON(w, statusOf(out), out)
	default:
		if err := deadletter.Delete(ctx, a.session, e.Summary()); err != nil {
			a.fail(w, r, err)
			return
		}
		a.m.purged.WithLabelValues(e.Component, "delete").Inc()
		log.Msg("dead letter purged")
		purged := true
		httpapi.WriteJSON(w, http.StatusOK, outcomeBody{DLQID: e.ID.String(), Component: e.Component, AggregateID: e.AggregateID.String(), Status: "purged", Purged: &purged})
	}
}

func (a *api) purgeBulk(w http.ResponseWriter, r *http.Request) {
	p, err := parsePurge(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx := r.Context()
	who := actor(ctx)
	sums, err := deadletter.Summaries(ctx, a.session, p.filter, gocql.UUID{}, a.cfg.BulkMax+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := bulkBody{Complete: len(sums) <= a.cfg.BulkMax}
	sums = sums[:min(len(sums), a.cfg.BulkMax)]
	body.Matched = len(sums)
	body.Results = make([]outcomeBody, len(sums))
	// Which are heads of parked aggregates: one read of the parked set of
	// each component involved.
	parked := map[string]map[gocql.UUID]deadletter.ParkedAggregate{}
	var heads, others []int
	for i, s := range sums {
		if retriable(s) {
			rows, ok := parked[s.Component]
			if !ok {
				if rows, err = deadletter.ParkedRows(ctx, a.session, s.Component); err != nil {
					a.fail(w, r, err)
					return
				}
				parked[s.Component] = rows
			}
			if row, ok := rows[s.AggregateID]; ok && row.Heads(s) {
				heads = append(heads, i)
				continue
			}
		}
		others = append(others, i)
	}
	if len(heads) > 0 && !p.skip {
		a.fail(w, r, parkedHeads(len(heads), len(sums)))
		return
	}
	for _, i := range others {
		s := sums[i]
		out := outcomeBody{DLQID: s.ID.String(), Component: s.Component, Status: "purged"}
		if err := deadletter.Delete(ctx, a.session, s); err != nil {
			a.logger.Warn().Err(err).Str("dlq_id", s.ID.String()).Msg("purging a dead letter")
			out.Status, out.Detail = "error", "the database did not answer; repeat the call"
			body.Failed++
		} else {
			purged := true
			out.Purged = &purged
			body.Purged++
			a.m.purged.WithLabelValues(s.Component, "delete").Inc()
		}
		body.Results[i] = out
	}
	a.bulk(ctx, sums, heads, deadletter.ActionSkip, who, &body)
	for _, i := range heads {
		if out := body.Results[i]; out.Purged != nil && *out.Purged {
			a.m.purged.WithLabelValues(sums[i].Component, "skip").Inc()
		}
	}
	body.Complete = body.Complete && body.NotAttempted == 0
	a.logger.Warn().Str("actor", who).Str("component", p.filter.Component).Str("event_type", p.filter.EventType).Bool("skip", p.skip).
		Int("matched", body.Matched).Int("purged", body.Purged).Int("heads_skipped", len(heads)).Int("failed", body.Failed).Bool("complete", body.Complete).
		Msg("dead letters purged by filter")
	httpapi.WriteJSON(w, http.StatusOK, body)
}
