package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// api answers queries over HTTP.
type api struct {
	session     *gocql.Session
	store       *eventstore.Store
	upcasters   *eventstore.Upcasters
	tokens      *signer
	gens        *generations // which generation of each view to read (generations.go)
	waitTimeout time.Duration
	logger      zerolog.Logger
	waits       *prometheus.CounterVec
	waiting     prometheus.Gauge
	tracer      trace.Tracer
	orders      aggregate
	customers   aggregate
	personal    personalData
}

// aggregate is what the by-id, time-travel and history endpoints need of
// one aggregate type.
type aggregate struct {
	typ string // aggregate_type in event_store
	// read returns the read-model row as its answer body and its version.
	read func(ctx context.Context, id gocql.UUID) (body any, version int64, found bool, err error)
	// fold returns the body folded from the first upTo events.
	fold func(ctx context.Context, id gocql.UUID, upTo int64) (any, error)
	// open opens the personal fields of an answer body (personal.go).
	open func(ctx context.Context, body any) (any, error)
}

func newAPI(session *gocql.Session, store *eventstore.Store, up *eventstore.Upcasters, tokens *signer, waitTimeout time.Duration, logger zerolog.Logger, reg prometheus.Registerer, tp trace.TracerProvider, pd personalData) (*api, error) {
	a := &api{
		session: session, store: store, upcasters: up, tokens: tokens, waitTimeout: waitTimeout, logger: logger, personal: pd,
		tracer: tp.Tracer("github.com/orderstream/orderstream/services/query-service"),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "query", Name: "min_version_waits_total",
			Help: "Reads with min_version whose read model was behind at first, by aggregate type and outcome: reached (caught up within query.min_version_timeout), timeout (answered 409), unreachable (the event store itself is below min_version; answered 409 at once).",
		}, []string{"aggregate_type", "outcome"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "query", Name: "min_version_waiting",
			Help: "Reads with min_version waiting for their read model right now.",
		}),
	}
	a.orders = aggregate{typ: order.AggregateType, read: a.readOrder, fold: a.foldOrder, open: pd.orderBody}
	a.customers = aggregate{typ: customer.AggregateType, read: a.readCustomer, fold: a.foldCustomer, open: pd.customerBody}
	if reg != nil {
		for _, c := range []prometheus.Collector{a.waits, a.waiting} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// routes mounts the query API; every route here is in openapi.json.
func (a *api) routes(r chi.Router) {
	r.Get("/v1/orders", a.ordersWithStatus)
	r.Get("/v1/orders/{id}", func(w http.ResponseWriter, r *http.Request) { a.byID(w, r, a.orders) })
	r.Get("/v1/orders/{id}/events", func(w http.ResponseWriter, r *http.Request) { a.history(w, r, a.orders) })
	r.Get("/v1/customers/{id}", func(w http.ResponseWriter, r *http.Request) { a.byID(w, r, a.customers) })
	r.Get("/v1/customers/{id}/orders", a.ordersOfCustomer)
	r.Get("/v1/customers/{id}/events", func(w http.ResponseWriter, r *http.Request) { a.history(w, r, a.customers) })
}

// --- by id ----------------------------------------------------------------

// request reads the {id} path parameter and the query with parse; on a
// bad one it answers 400 naming the parameter and returns false.
func request[P any](a *api, w http.ResponseWriter, r *http.Request, parse func(string) (P, error)) (gocql.UUID, P, bool) {
	id, err := parseID(chi.URLParam(r, "id"), "id")
	if err == nil {
		var p P
		if p, err = parse(r.URL.RawQuery); err == nil {
			return id, p, true
		}
	}
	a.fail(w, r, err)
	var zero P
	return gocql.UUID{}, zero, false
}

func (a *api) byID(w http.ResponseWriter, r *http.Request, agg aggregate) {
	ctx := r.Context()
	id, p, ok := request(a, w, r, parseByID)
	if !ok {
		return
	}
	if p.atVersion > 0 {
		a.atVersion(w, r, agg, id, p.atVersion)
		return
	}
	body, version, found, err := agg.read(ctx, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if p.minVersion > 0 && (!found || version < p.minVersion) {
		body, version, found, err = a.await(ctx, agg, id, p.minVersion, version)
		if err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if !found {
		a.fail(w, r, notFound(agg.typ, id))
		return
	}
	if body, err = agg.open(ctx, body); err != nil {
		a.fail(w, r, err)
		return
	}
	respond(w, r, body, version)
}

// respond writes body with its version as ETag, or 304 when the client
// holds that version already.
func respond(w http.ResponseWriter, r *http.Request, body any, version int64) {
	etag := strconv.Quote(strconv.FormatInt(version, 10))
	w.Header().Set("ETag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, body)
}

// noneMatch tells whether an If-None-Match value names etag, comparing
// weakly as RFC 9110 asks for GET.
func noneMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// await waits, bounded by waitTimeout, until the read model of id reaches
// minVersion, re-reading with exponential backoff. It answers at once when
// waiting cannot help: the aggregate does not exist, or the event store
// itself is below minVersion.
func (a *api) await(ctx context.Context, agg aggregate, id gocql.UUID, minVersion, have int64) (body any, version int64, found bool, err error) {
	// The wait is a span of its own, so a trace shows how long a read
	// waited for its read model and how the wait ended.
	ctx, span := a.tracer.Start(ctx, "query min_version wait", trace.WithAttributes(
		attribute.String("orderstream.aggregate_id", id.String()),
		attribute.String("orderstream.aggregate_type", agg.typ),
		attribute.Int64("orderstream.min_version", minVersion),
		attribute.Int64("orderstream.version_at_start", have)))
	outcome := "error"
	defer func() {
		span.SetAttributes(attribute.String("orderstream.min_version.outcome", outcome), attribute.Int64("orderstream.version", version))
		if err != nil && outcome == "error" {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	deadline := time.Now().Add(a.waitTimeout)
	current, typ, err := a.store.Version(ctx, id)
	if err != nil {
		return nil, 0, false, err
	}
	if current == 0 || typ != agg.typ {
		outcome = "not_found"
		return nil, 0, false, nil
	}
	if current < minVersion {
		outcome = "unreachable"
		a.waits.WithLabelValues(agg.typ, outcome).Inc()
		return nil, 0, false, behind(minVersion, have, fmt.Sprintf("the %s is at version %d; version %d does not exist yet", agg.typ, current, minVersion))
	}
	delays := backoff.Policy{Initial: 2 * time.Millisecond, Max: 50 * time.Millisecond}.Start()
	a.waiting.Inc()
	defer a.waiting.Dec()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		left := time.Until(deadline)
		if left <= 0 {
			outcome = "timeout"
			a.waits.WithLabelValues(agg.typ, outcome).Inc()
			return nil, 0, false, behind(minVersion, have, fmt.Sprintf("the read model of this %s did not reach version %d within %s", agg.typ, minVersion, a.waitTimeout))
		}
		timer.Reset(min(delays.Next(), left))
		select {
		case <-ctx.Done():
			return nil, 0, false, ctx.Err()
		case <-timer.C:
		}
		body, version, found, err = agg.read(ctx, id)
		if err != nil {
			return nil, 0, false, err
		}
		if found && version >= minVersion {
			outcome = "reached"
			a.waits.WithLabelValues(agg.typ, outcome).Inc()
			return body, version, true, nil
		}
		if found {
			have = version
		}
	}
}

func behind(minVersion, have int64, detail string) *httpapi.ProblemError {
	return httpapi.NewProblem(http.StatusConflict, "version-not-reached", "Version not reached", detail).
		WithField("min_version").WithCode("query.min_version_not_reached").WithCurrentVersion(have)
}

// current is the aggregate's version in event_store; an aggregate that
// does not exist, or is of another type, is answered 404 (false).
func (a *api) current(w http.ResponseWriter, r *http.Request, agg aggregate, id gocql.UUID) (int64, bool) {
	current, typ, err := a.store.Version(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return 0, false
	}
	if current == 0 || typ != agg.typ {
		a.fail(w, r, notFound(agg.typ, id))
		return 0, false
	}
	return current, true
}

// atVersion answers the state after the first n events, folded from
// event_store. A version beyond the current one is 404: that state does
// not exist (yet); current_version says how far the aggregate is.
func (a *api) atVersion(w http.ResponseWriter, r *http.Request, agg aggregate, id gocql.UUID, n int64) {
	ctx := r.Context()
	current, ok := a.current(w, r, agg, id)
	if !ok {
		return
	}
	if n > current {
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "version-not-found", "No such version",
			fmt.Sprintf("the %s is at version %d; at_version must be from 1 to %d", agg.typ, current, current)).
			WithField("at_version").WithCode("query.version_not_found").WithCurrentVersion(current))
		return
	}
	body, err := agg.fold(ctx, id, n)
	if err == nil {
		body, err = agg.open(ctx, body)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	respond(w, r, body, n)
}

func (a *api) readOrder(ctx context.Context, id gocql.UUID) (any, int64, bool, error) {
	gen, err := a.gens.active(ctx, orderView)
	if err != nil {
		return nil, 0, false, err
	}
	return readAs(ctx, a, id, gen.ReadOrder, func(r readmodel.OrderRow) (any, int64) { return orderFromRow(r), r.Version })
}

func (a *api) readCustomer(ctx context.Context, id gocql.UUID) (any, int64, bool, error) {
	gen, err := a.gens.active(ctx, customerView)
	if err != nil {
		return nil, 0, false, err
	}
	return readAs(ctx, a, id, gen.ReadCustomer, func(r readmodel.CustomerRow) (any, int64) { return customerFromRow(r), r.Version })
}

// readAs reads a read-model row (in the view's active generation: each
// read, a wait for min_version's included, asks again) and turns it into
// its answer body.
func readAs[R any](ctx context.Context, a *api, id gocql.UUID, read func(context.Context, *gocql.Session, gocql.UUID) (R, bool, error), body func(R) (any, int64)) (any, int64, bool, error) {
	row, found, err := read(ctx, a.session, id)
	if err != nil || !found {
		return nil, 0, false, err
	}
	b, version := body(row)
	return b, version, true, nil
}

func (a *api) foldOrder(ctx context.Context, id gocql.UUID, upTo int64) (any, error) {
	return foldAs(ctx, a, id, upTo, readmodel.FoldOrder, func(s readmodel.Order) int64 { return s.State.Version },
		readmodel.OrderRowOf, func(r readmodel.OrderRow) any { return orderFromRow(r) })
}

func (a *api) foldCustomer(ctx context.Context, id gocql.UUID, upTo int64) (any, error) {
	return foldAs(ctx, a, id, upTo, readmodel.FoldCustomer, func(s readmodel.Customer) int64 { return s.State.Version },
		readmodel.CustomerRowOf, func(r readmodel.CustomerRow) any { return customerFromRow(r) })
}

// foldAs folds the first upTo events and answers with the row the read
// model would hold at that version.
func foldAs[S, R any](ctx context.Context, a *api, id gocql.UUID, upTo int64, fold func(S, eventstore.Event) (S, error), version func(S) int64,
	rowOf func(gocql.UUID, S, int64) (R, error), body func(R) any) (any, error) {
	s, err := foldEvents(ctx, a, id, upTo, fold)
	if err != nil {
		return nil, err
	}
	row, err := rowOf(id, s, version(s))
	if err != nil {
		return nil, err
	}
	return body(row), nil
}

// foldEvents folds the aggregate's first upTo events, upcast as the
// projectors upcast them, through the read model's own fold.
func foldEvents[S any](ctx context.Context, a *api, id gocql.UUID, upTo int64, fold func(S, eventstore.Event) (S, error)) (S, error) {
	var s S
	err := a.store.Events(ctx, id, 0, upTo, func(e eventstore.Event) error {
		up, err := a.upcasters.Upcast(e)
		if err != nil {
			return err
		}
		s, err = fold(s, up)
		return err
	})
	return s, err
}

// --- lists ----------------------------------------------------------------

func (a *api) ordersOfCustomer(w http.ResponseWriter, r *http.Request) {
	id, p, ok := request(a, w, r, parseCustomerOrders)
	if !ok {
		return
	}
	read := func(ctx context.Context, gen readmodel.Generation, created readmodel.Created, size int, token []byte) ([]orderSummary, []byte, error) {
		rows, next, err := gen.OrdersOfCustomerPage(ctx, a.session, id, created, size, token)
		out := make([]orderSummary, 0, len(rows))
		for _, row := range rows {
			out = append(out, summaryOf(row.OrderID, id, row.Status, row.CreatedAt, row.Version, row.ItemCount, row.Totals, row.UpdatedAt))
		}
		return out, next, err
	}
	page, err := a.list(r.Context(), p, customerOrderView, p.scope("customer-orders", id.String()), read)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(page.Orders) == 0 && p.pageToken == "" {
		// An empty first page: tell a customer without orders from none.
		// Orders imply their customer, so a full page costs nothing more.
		current, typ, err := a.store.Version(r.Context(), id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if current == 0 || typ != customer.AggregateType {
			a.fail(w, r, notFound(customer.AggregateType, id))
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}

func (a *api) ordersWithStatus(w http.ResponseWriter, r *http.Request) {
	status, p, err := parseStatusOrders(r.URL.RawQuery)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	read := func(ctx context.Context, gen readmodel.Generation, created readmodel.Created, size int, token []byte) ([]orderSummary, []byte, error) {
		rows, next, err := gen.OrdersWithStatusPage(ctx, a.session, status, created, size, token)
		out := make([]orderSummary, 0, len(rows))
		for _, row := range rows {
			out = append(out, summaryOf(row.OrderID, row.CustomerID, row.Status, row.CreatedAt, row.Version, row.ItemCount, row.Totals, row.UpdatedAt))
		}
		return out, next, err
	}
	page, err := a.list(r.Context(), p, statusOrderView, p.scope("status-orders", status.String()), read)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}

// summaryOf is the listing entry of an order row.
func summaryOf(id, customerID gocql.UUID, status string, createdAt time.Time, version int64, count int, totals map[string]int64, updatedAt time.Time) orderSummary {
	return orderSummary{
		ID: id.String(), CustomerID: customerID.String(), Status: status, ItemCount: count, Totals: totalsOf(totals),
		CreatedAt: createdAt.UTC(), UpdatedAt: optionalTime(updatedAt), Version: version,
	}
}

// pageReader reads one page of a listing of orders (pkg/readmodel's
// readers) in generation gen of the view's tables: at most size orders
// created within created, from token on, and the token of the next page
// (nil after the last).
type pageReader func(ctx context.Context, gen readmodel.Generation, created readmodel.Created, size int, token []byte) ([]orderSummary, []byte, error)

// list reads one page of a listing of orders of view, newest first,
// restricted to the created_at range of p and resumed from p's page token,
// which must belong to scope. A first page reads the view's active
// generation; a next page reads the generation its token was issued in,
// while that generation exists (410 once a rebuild's grace period is
// over: the listing must start again).
func (a *api) list(ctx context.Context, p listParams, view, scope string, read pageReader) (orderPage, error) {
	var state []byte
	var gen readmodel.Generation
	if p.pageToken != "" {
		tgen, s, err := a.tokens.openAt(scope, p.pageToken)
		if err != nil || len(s) == 0 {
			return orderPage{}, badParam("page_token", "page_token is not a next_page_token of this listing with these filters")
		}
		if gen, err = a.gens.forToken(ctx, view, tgen); err != nil {
			return orderPage{}, err
		}
		state = s
	} else {
		var err error
		if gen, err = a.gens.active(ctx, view); err != nil {
			return orderPage{}, err
		}
	}
	orders, next, err := read(ctx, gen, readmodel.Created{After: p.after, Before: p.before}, p.limit, state)
	if err != nil {
		return orderPage{}, fmt.Errorf("listing %s: %w", scope, err)
	}
	page := orderPage{Orders: orders}
	if len(next) > 0 {
		page.NextPageToken = a.tokens.signAt(scope, int(gen), next)
	}
	return page, nil
}

// --- history --------------------------------------------------------------

func (a *api) history(w http.ResponseWriter, r *http.Request, agg aggregate) {
	ctx := r.Context()
	id, p, ok := request(a, w, r, parseHistory)
	if !ok {
		return
	}
	scope := "events/" + agg.typ + "/" + id.String()
	after := p.after
	if p.pageToken != "" {
		pos, err := a.tokens.open(scope, p.pageToken)
		if err != nil || len(pos) != 8 || int64(binary.BigEndian.Uint64(pos)) < 0 {
			a.fail(w, r, badParam("page_token", "page_token is not a next_page_token of this history"))
			return
		}
		after = int64(binary.BigEndian.Uint64(pos))
	}
	current, ok := a.current(w, r, agg, id)
	if !ok {
		return
	}
	page := historyPage{AggregateID: id.String(), AggregateType: agg.typ, Version: current, Events: []eventBody{}}
	// Sequences run 1..current without gaps, so a page is a sequence range.
	if upTo := min(after+int64(p.limit), current); after < upTo {
		owner := a.owner(agg.typ, id)
		err := a.store.Events(ctx, id, after, upTo, func(e eventstore.Event) error {
			if err := a.personal.event(ctx, agg.typ, &e, owner); err != nil {
				return err
			}
			page.Events = append(page.Events, eventFrom(e))
			return nil
		})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if upTo < current {
			page.NextPageToken = a.tokens.sign(scope, binary.BigEndian.AppendUint64(nil, uint64(upTo)))
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}
