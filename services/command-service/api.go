package main

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/repository"
)

// api carries out commands received over HTTP.
type api struct {
	orders    *repository.Orders
	customers *repository.Customers
	ordering  ordering
	maxBody   int64
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	logger    zerolog.Logger
	duration  *prometheus.HistogramVec
	// forgetting carries out POST /v1/customers/{id}/forget (forget.go).
	forgetting *forgetting
	// middleware wraps every command: its deadline, the Idempotency-Key.
	middleware []func(http.Handler) http.Handler
}

func newAPI(orders *repository.Orders, customers *repository.Customers, maxBody int64, tp trace.TracerProvider, prop propagation.TextMapPropagator, logger zerolog.Logger, reg prometheus.Registerer) (*api, error) {
	a := &api{
		orders: orders, customers: customers, ordering: ordering{customers: customers}, maxBody: maxBody,
		tracer: tp.Tracer("github.com/orderstream/orderstream/services/command-service"),
		prop:   prop, logger: logger,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "command_duration_seconds",
			Help:    "Duration of command processing (load, decide, commit, retries), by command and outcome.",
			Buckets: []float64{.001, .002, .004, .006, .008, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"command", "outcome"}),
	}
	if err := reg.Register(a.duration); err != nil {
		return nil, err
	}
	return a, nil
}

// routes mounts the command API; every route here is in openapi.json.
// Each command runs behind a.middleware; the forget first checks its
// bearer token, before the Idempotency-Key is claimed, so that a refused
// attempt's answer is not replayed to an authorised retry.
func (a *api) routes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(a.middleware...)
		a.commandRoutes(r)
	})
	r.Group(func(r chi.Router) {
		if a.forgetting != nil {
			r.Use(a.forgetting.authorize)
		}
		r.Use(a.middleware...)
		r.Post("/v1/customers/{id}/forget", a.forget)
	})
}

func (a *api) commandRoutes(r chi.Router) {
	r.Post("/v1/customers", a.registerCustomer)
	r.Patch("/v1/customers/{id}/profile", a.updateProfile)
	r.Put("/v1/customers/{id}/email", a.changeEmail)
	r.Put("/v1/customers/{id}/phone", a.changePhone)
	r.Post("/v1/customers/{id}/addresses", a.addAddress)
	r.Put("/v1/customers/{id}/addresses/{addressId}", a.updateAddress)
	r.Delete("/v1/customers/{id}/addresses/{addressId}", a.removeAddress)
	r.Post("/v1/customers/{id}/tier", a.upgradeTier)
	r.Post("/v1/customers/{id}/suspend", a.suspend)
	r.Post("/v1/customers/{id}/reactivate", a.reactivate)
	r.Post("/v1/customers/{id}/deactivate", a.deactivate)

	r.Post("/v1/orders", a.createOrder)
	r.Put("/v1/orders/{id}/items", a.updateItems)
	r.Post("/v1/orders/{id}/confirm", a.confirm)
	r.Post("/v1/orders/{id}/ship", a.ship)
	r.Post("/v1/orders/{id}/deliver", a.deliver)
	r.Post("/v1/orders/{id}/cancel", a.cancel)
}

// --- orders ---------------------------------------------------------------

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) {
	var b createOrderBody
	if !a.decode(w, r, &b) {
		return
	}
	id, ok := a.optionalID(w, r, b.OrderID, "order_id")
	if !ok {
		return
	}
	items, err := toItems(b.Items)
	if err != nil {
		a.fail(w, r, "CreateOrder", err)
		return
	}
	cust, ok := a.parseID(w, r, *b.CustomerID, "customer_id")
	if !ok {
		return
	}
	if err := a.ordering.CanOrder(r.Context(), cust); err != nil {
		a.fail(w, r, "CreateOrder", err)
		return
	}
	cmd := order.CreateOrder{OrderID: id.String(), CustomerID: cust.String(), Items: items}
	execute(a, w, r, a.orders, "CreateOrder", "/v1/orders/", id, order.Command(cmd), http.StatusCreated, "order_id", nil)
}

func (a *api) updateItems(w http.ResponseWriter, r *http.Request) {
	var b itemsBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	items, err := toItems(b.Items)
	if err != nil {
		a.fail(w, r, "UpdateItems", err)
		return
	}
	execute(a, w, r, a.orders, "UpdateItems", "/v1/orders/", id, order.Command(order.UpdateItems{Items: items}), http.StatusOK, "", nil)
}

func (a *api) confirm(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok || !a.decodeOptional(w, r, &emptyBody{}) {
		return
	}
	execute(a, w, r, a.orders, "ConfirmOrder", "/v1/orders/", id, order.Command(order.ConfirmOrder{}), http.StatusOK, "", nil)
}

func (a *api) ship(w http.ResponseWriter, r *http.Request) {
	var b shipBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	cmd := order.ShipOrder{Carrier: *b.Carrier, TrackingNumber: *b.TrackingNumber}
	execute(a, w, r, a.orders, "ShipOrder", "/v1/orders/", id, order.Command(cmd), http.StatusOK, "", nil)
}

func (a *api) deliver(w http.ResponseWriter, r *http.Request) {
	var b deliverBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decodeOptional(w, r, &b) {
		return
	}
	execute(a, w, r, a.orders, "DeliverOrder", "/v1/orders/", id, order.Command(order.DeliverOrder{Signature: b.Signature}), http.StatusOK, "", nil)
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	var b cancelBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	cmd := order.CancelOrder{Reason: *b.Reason, CancelledBy: *b.CancelledBy}
	execute(a, w, r, a.orders, "CancelOrder", "/v1/orders/", id, order.Command(cmd), http.StatusOK, "", nil)
}

// --- customers ------------------------------------------------------------

func (a *api) registerCustomer(w http.ResponseWriter, r *http.Request) {
	var b registerBody
	if !a.decode(w, r, &b) {
		return
	}
	id, ok := a.optionalID(w, r, b.CustomerID, "customer_id")
	if !ok {
		return
	}
	email, err := value.NewEmail(*b.Email)
	if err != nil {
		a.fail(w, r, "RegisterCustomer", err)
		return
	}
	var phone value.PhoneNumber
	if b.Phone != "" {
		if phone, err = value.NewPhoneNumber(b.Phone); err != nil {
			a.fail(w, r, "RegisterCustomer", err)
			return
		}
	}
	cmd := customer.RegisterCustomer{CustomerID: id.String(), Name: *b.Name, Email: email, Phone: phone}
	execute(a, w, r, a.customers, "RegisterCustomer", "/v1/customers/", id, customer.Command(cmd), http.StatusCreated, "customer_id", nil)
}

func (a *api) updateProfile(w http.ResponseWriter, r *http.Request) {
	var b profileBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	execute(a, w, r, a.customers, "UpdateProfile", "/v1/customers/", id, customer.Command(customer.UpdateProfile{Name: *b.Name}), http.StatusOK, "", nil)
}

func (a *api) changeEmail(w http.ResponseWriter, r *http.Request) {
	var b emailBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	email, err := value.NewEmail(*b.Email)
	if err != nil {
		a.fail(w, r, "ChangeEmail", err)
		return
	}
	execute(a, w, r, a.customers, "ChangeEmail", "/v1/customers/", id, customer.Command(customer.ChangeEmail{Email: email}), http.StatusOK, "", nil)
}

func (a *api) changePhone(w http.ResponseWriter, r *http.Request) {
	var b phoneBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	var phone value.PhoneNumber
	if *b.Phone != "" {
		var err error
		if phone, err = value.NewPhoneNumber(*b.Phone); err != nil {
			a.fail(w, r, "ChangePhone", err)
			return
		}
	}
	execute(a, w, r, a.customers, "ChangePhone", "/v1/customers/", id, customer.Command(customer.ChangePhone{Phone: phone}), http.StatusOK, "", nil)
}

func (a *api) addAddress(w http.ResponseWriter, r *http.Request) {
	var b addressBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	addrID, ok := a.optionalID(w, r, b.AddressID, "address_id")
	if !ok {
		return
	}
	addr, err := b.address()
	if err != nil {
		a.fail(w, r, "AddAddress", err)
		return
	}
	cmd := customer.AddAddress{AddressID: addrID.String(), Address: addr}
	execute(a, w, r, a.customers, "AddAddress", "/v1/customers/", id, customer.Command(cmd), http.StatusCreated, "",
		func(res *accepted) { res.AddressID = addrID.String() })
}

func (a *api) updateAddress(w http.ResponseWriter, r *http.Request) {
	var b addressBody
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	addrID, ok := a.parseID(w, r, chi.URLParam(r, "addressId"), "addressId")
	if !ok || !a.decode(w, r, &b) {
		return
	}
	addr, err := b.address()
	if err != nil {
		a.fail(w, r, "UpdateAddress", err)
		return
	}
	cmd := customer.UpdateAddress{AddressID: addrID.String(), Address: addr}
	execute(a, w, r, a.customers, "UpdateAddress", "/v1/customers/", id, customer.Command(cmd), http.StatusOK, "", nil)
}

func (a *api) removeAddress(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	addrID, ok := a.parseID(w, r, chi.URLParam(r, "addressId"), "addressId")
	if !ok {
		return
	}
	execute(a, w, r, a.customers, "RemoveAddress", "/v1/customers/", id, customer.Command(customer.RemoveAddress{AddressID: addrID.String()}), http.StatusOK, "", nil)
}

func (a *api) upgradeTier(w http.ResponseWriter, r *http.Request) {
	var b tierBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	tier, err := value.ParseCustomerTier(*b.Tier)
	if err != nil {
		a.fail(w, r, "UpgradeTier", err)
		return
	}
	execute(a, w, r, a.customers, "UpgradeTier", "/v1/customers/", id, customer.Command(customer.UpgradeTier{Tier: tier}), http.StatusOK, "", nil)
}

func (a *api) suspend(w http.ResponseWriter, r *http.Request) {
	var b reasonBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	execute(a, w, r, a.customers, "SuspendCustomer", "/v1/customers/", id, customer.Command(customer.SuspendCustomer{Reason: *b.Reason}), http.StatusOK, "", nil)
}

func (a *api) reactivate(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok || !a.decodeOptional(w, r, &emptyBody{}) {
		return
	}
	execute(a, w, r, a.customers, "ReactivateCustomer", "/v1/customers/", id, customer.Command(customer.ReactivateCustomer{}), http.StatusOK, "", nil)
}

func (a *api) deactivate(w http.ResponseWriter, r *http.Request) {
	var b reasonBody
	id, ok := a.pathID(w, r)
	if !ok || !a.decode(w, r, &b) {
		return
	}
	execute(a, w, r, a.customers, "DeactivateCustomer", "/v1/customers/", id, customer.Command(customer.DeactivateCustomer{Reason: *b.Reason}), http.StatusOK, "", nil)
}

// --- the common path ------------------------------------------------------

// execute runs cmd against the aggregate id through repo and answers with
// its new version, or with the problem that stopped it. idField is set for
// a command that creates the aggregate: it names the body field of the id,
// which a 409 id-taken names when the id belongs to another aggregate type.
func execute[S, C, E any](a *api, w http.ResponseWriter, r *http.Request, repo *eventstore.Repository[S, C, E],
	command, basePath string, id gocql.UUID, cmd C, status int, idField string, extra func(*accepted)) {
	executeThen(a, w, r, repo, command, basePath, id, cmd, status, idField, extra, nil)
}

// executeThen is execute with then run after the command is committed (or
// found committed, or decided a no-op) and before the answer: its error is
// the answer instead. It returns the outcome label.
func executeThen[S, C, E any](a *api, w http.ResponseWriter, r *http.Request, repo *eventstore.Repository[S, C, E],
	command, basePath string, id gocql.UUID, cmd C, status int, idField string, extra func(*accepted), then func(context.Context) error) string {
	ctx, span := a.tracer.Start(r.Context(), "command "+command, trace.WithAttributes(
		attribute.String("orderstream.command", command), attribute.String("orderstream.aggregate_id", id.String())))
	defer span.End()
	start := time.Now()
	httpapi.AddLogFields(ctx, func(e *zerolog.Event) { e.Str("command", command).Str("aggregate_id", id.String()) })

	meta, versions, err := a.metadata(ctx, r)
	if err == nil && len(versions) > 0 {
		var v int64
		v, err = pickVersion(ctx, repo, id, versions)
		meta.ExpectedVersion = &v
	}
	if err != nil {
		return a.fail(w, r, command, err)
	}
	var version int64
	if commandOf(ctx).retried {
		// An earlier attempt of this request may have committed before it
		// died: answer with what it did instead of committing again.
		if v, found, err := repo.CommittedCommand(ctx, id, meta.CommandID); err != nil {
			return a.fail(w, r, command, err)
		} else if found {
			version = v
		}
	}
	if version == 0 {
		res, err := repo.Handle(ctx, id, cmd, meta)
		if err != nil {
			err = idTaken(err, idField)
			outcome := a.fail(w, r, command, err)
			a.duration.WithLabelValues(command, outcome).Observe(time.Since(start).Seconds())
			if outcome == "error" || outcome == "unavailable" {
				span.SetStatus(codes.Error, err.Error())
			}
			return outcome
		}
		version = res.Version
		span.SetAttributes(attribute.Int("orderstream.events", len(res.Events)), attribute.Int("orderstream.conflict_retries", res.Retries))
	}
	if then != nil {
		if err := then(ctx); err != nil {
			outcome := a.fail(w, r, command, err)
			a.duration.WithLabelValues(command, outcome).Observe(time.Since(start).Seconds())
			span.SetStatus(codes.Error, err.Error())
			return outcome
		}
	}
	a.duration.WithLabelValues(command, "ok").Observe(time.Since(start).Seconds())
	httpapi.AddLogFields(ctx, func(e *zerolog.Event) { e.Str("outcome", "ok").Int64("version", version) })

	body := accepted{ID: id.String(), Version: version}
	if extra != nil {
		extra(&body)
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(version, 10)))
	w.Header().Set("Location", basePath+id.String())
	httpapi.WriteJSON(w, status, body)
	return "ok"
}

// metadata gathers what travels with the command onto its events, and the
// versions If-Match names (none for "*" or no If-Match).
func (a *api) metadata(ctx context.Context, r *http.Request) (eventstore.Metadata, []int64, error) {
	meta := eventstore.Metadata{
		CommandID:     commandOf(ctx).id,
		CorrelationID: httpapi.CorrelationIDFrom(ctx),
		TraceContext:  httpapi.TraceContext(ctx, a.prop),
		Now:           time.Now().UTC(),
	}
	if meta.CommandID == "" {
		meta.CommandID = uuid.NewString()
	}
	var versions []int64
	if values := r.Header.Values("If-Match"); len(values) > 0 {
		var err error
		if versions, err = parseIfMatch(values); err != nil {
			return meta, nil, err
		}
	}
	return meta, versions, nil
}

// pickVersion chooses, of the versions an If-Match list names, the one to
// expect: with one there is no choice; with more, the aggregate's current
// version if listed, else the first. The commit checks the expected version
// atomically, so the list matches exactly when one of its tags does.
func pickVersion[S, C, E any](ctx context.Context, repo *eventstore.Repository[S, C, E], id gocql.UUID, versions []int64) (int64, error) {
	if len(versions) == 1 {
		return versions[0], nil
	}
	_, current, err := repo.Load(ctx, id)
	if err != nil {
		return 0, err
	}
	if slices.Contains(versions, current) {
		return current, nil
	}
	return versions[0], nil
}

// ifMatchHint is the detail of every refused If-Match.
const ifMatchHint = `If-Match must be "*" or a list of the versions the command expects as strong entity tags, such as "3" or "3", "4" (RFC 9110 §13.1.1)`

// parseIfMatch reads If-Match (every header line, as one list). It returns
// no versions for "*", which any existing aggregate matches. A weak tag
// (W/"3") is refused: If-Match compares strongly and this API's ETags are
// strong, so it could never match. So is a tag that is not the canonical
// decimal form of a version ("01", "+1"): no ETag of this API has it.
func parseIfMatch(values []string) ([]int64, error) {
	joined := strings.Join(values, ",")
	if strings.TrimSpace(joined) == "*" {
		return nil, nil
	}
	var versions []int64
	for elem := range strings.SplitSeq(joined, ",") {
		tag := strings.Trim(elem, " \t")
		if tag == "" {
			continue // RFC 9110 §5.6.1: empty list elements are allowed
		}
		v, err := parseETag(tag)
		if err != nil {
			return nil, err
		}
		versions = append(versions, v)
	}
	if len(versions) == 0 {
		return nil, badHeader("If-Match", ifMatchHint)
	}
	return versions, nil
}

// parseETag reads one entity tag: a quoted canonical decimal version.
func parseETag(tag string) (int64, error) {
	if strings.HasPrefix(tag, "W/") || strings.HasPrefix(tag, "w/") {
		return 0, badHeader("If-Match", "a weak entity tag never matches (If-Match compares strongly); send the version as \"N\"")
	}
	inner, ok := strings.CutPrefix(tag, `"`)
	if ok {
		inner, ok = strings.CutSuffix(inner, `"`)
	}
	if !ok || inner == "" || len(inner) > 18 || strings.Trim(inner, "0123456789") != "" || (len(inner) > 1 && inner[0] == '0') {
		return 0, badHeader("If-Match", ifMatchHint)
	}
	v, err := strconv.ParseInt(inner, 10, 64)
	if err != nil {
		return 0, badHeader("If-Match", ifMatchHint)
	}
	return v, nil
}

func badHeader(name, detail string) error {
	p := httpapi.NewProblem(http.StatusBadRequest, "invalid-header", "Invalid header", detail)
	p.Problem.Field = name
	return p
}

func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpapi.DecodeJSON(r, w, a.maxBody, v); err != nil {
		httpapi.WriteError(w, r, err)
		return false
	}
	return true
}

// decodeOptional decodes a body that may be absent.
func (a *api) decodeOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.ContentLength == 0 {
		return true
	}
	return a.decode(w, r, v)
}

func (a *api) pathID(w http.ResponseWriter, r *http.Request) (gocql.UUID, bool) {
	return a.parseID(w, r, chi.URLParam(r, "id"), "id")
}

func (a *api) optionalID(w http.ResponseWriter, r *http.Request, s *string, field string) (gocql.UUID, bool) {
	if s == nil {
		// With an Idempotency-Key the id derives from the command, so that
		// a retry of a request whose first attempt committed and then died
		// names the same aggregate and finds that commit, instead of
		// creating a second one.
		if c := commandOf(r.Context()); c.id != "" {
			if ns, err := uuid.Parse(c.id); err == nil {
				return gocql.UUID(uuid.NewSHA1(ns, []byte(field))), true
			}
		}
		return gocql.UUID(uuid.New()), true
	}
	return a.parseID(w, r, *s, field)
}

// parseID reads a UUID in any case and answers 400 naming field if it is
// not one.
func (a *api) parseID(w http.ResponseWriter, r *http.Request, s, field string) (gocql.UUID, bool) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 || u == uuid.Nil {
		p := httpapi.NewProblem(http.StatusBadRequest, "invalid-id", "Invalid id", field+" must be a UUID such as 0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11")
		p.Problem.Field = field
		httpapi.WriteError(w, r, p)
		return gocql.UUID{}, false
	}
	return gocql.UUID(u), true
}
