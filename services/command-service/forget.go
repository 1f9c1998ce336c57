package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
)

// PersonalConfig switches the sealing of personal data on (personal.*
// keys, docs/personal-data.md). The keys of personal.Config (kek_file,
// cache_ttl, cache_size, timeout) sit beside enabled.
//
// Off in the binary's defaults: sealing needs a key-encryption key and the
// customer_keys table, which an operator provides; `make up` and the Helm
// charts switch it on. Once on, keep it on: with it off, sealed values are
// carried as they are and nothing is opened.
type PersonalConfig struct {
	Enabled         bool `mapstructure:"enabled" help:"seal customers' personal data (name, email, phone, addresses, delivery signatures) in every event and snapshot with their data key, and allow forgetting a customer; needs personal.kek_file"`
	personal.Config `mapstructure:",squash"`
}

// orderOwnerCache is how many orders' customer ids the sealing store
// remembers (the owner of an order's personal data).
const orderOwnerCache = 100_000

// ForgetConfig guards POST /v1/customers/{id}/forget with a bearer token,
// like dlq-service's mutations.
type ForgetConfig struct {
	Token     string `mapstructure:"token" help:"bearer token POST /v1/customers/{id}/forget requires (ORDERSTREAM_FORGET_TOKEN); with neither token nor token_file it answers 403"`
	TokenFile string `mapstructure:"token_file" help:"file holding the forget bearer token, read at start (a mounted Kubernetes secret); instead of token"`
}

// minTokenBytes is the shortest bearer token accepted.
const minTokenBytes = 16

// Validate checks every key.
func (c ForgetConfig) Validate() error {
	var errs []error
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, config.Errorf("token_file", "give either forget.token or forget.token_file, not both"))
	}
	if c.Token != "" && len(c.Token) < minTokenBytes {
		errs = append(errs, config.Errorf("token", "must be at least %d bytes, got %d", minTokenBytes, len(c.Token)))
	}
	return errors.Join(errs...)
}

// loadToken reads the bearer token from the config or its file.
func (c ForgetConfig) loadToken() (string, error) {
	return config.ReadToken(c.Token, c.TokenFile, "forget.token_file", minTokenBytes)
}

// newKeyring builds the keyring of customers' data keys on customer_keys,
// with the key-encryption key read from cfg.KEKFile.
func newKeyring(session *gocql.Session, cfg personal.Config, logger zerolog.Logger, reg prometheus.Registerer) (*personal.Keyring, error) {
	kek, err := personal.ReadKEKFile(cfg.KEKFile)
	if err != nil {
		return nil, config.Errorf("personal.kek_file", "%v", err)
	}
	wrapper, err := personal.NewFileWrapper(kek)
	if err != nil {
		return nil, config.Errorf("personal.kek_file", "%v", err)
	}
	return personal.NewKeyring(cfg, personal.NewCQLStore(session), wrapper, logger, reg)
}

// forgetting carries out forgets: who may ask, and the keyring whose keys
// it destroys (nil: personal data is off, and forgets are refused).
type forgetting struct {
	token httpapi.BearerToken
	keys  *personal.Keyring
	audit zerolog.Logger
}

func newForgetting(cfg ForgetConfig, keys *personal.Keyring, logger zerolog.Logger) (*forgetting, error) {
	token, err := cfg.loadToken()
	if err != nil {
		return nil, err
	}
	f := &forgetting{keys: keys, audit: logger.With().Str("audit", "customer.forget").Logger()}
	f.token = httpapi.NewBearerToken(token)
	if !f.token.Configured() {
		logger.Warn().Msg("neither forget.token nor forget.token_file is set: POST /v1/customers/{id}/forget is refused (403)")
	}
	return f, nil
}

type requesterKey struct{}

// authorize lets a request through only with the bearer token: 401 when it
// has none, 403 when it is wrong or no token is configured. Nothing of the
// request is read or done before (it runs before the Idempotency-Key is
// claimed, so a refused attempt does not answer a later authorised retry).
func (f *forgetting) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := f.token.Check(r); {
		case errors.Is(err, httpapi.ErrNoBearerToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="orderstream-forget"`)
			f.refuse(w, r, httpapi.NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized",
				"forgetting a customer needs an Authorization: Bearer <token> header").WithCode("customer.forget_unauthorized"))
			return
		case err != nil:
			detail := "the bearer token is not the one this service accepts"
			if !f.token.Configured() {
				detail = "this service has no token configured (forget.token or forget.token_file), so it forgets no one"
			}
			f.refuse(w, r, httpapi.NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail).WithCode("customer.forget_forbidden"))
			return
		}
		who, err := requester(r)
		if err != nil {
			f.refuse(w, r, err)
			return
		}
		httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("requested_by", who) })
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requesterKey{}, who)))
	})
}

// refuse answers a request authorize turned away, and audits it: a refused
// forget is worth knowing about too.
func (f *forgetting) refuse(w http.ResponseWriter, r *http.Request, err error) {
	p, _ := problemFor(err)
	httpapi.AddLogFields(r.Context(), func(e *zerolog.Event) { e.Str("outcome", "refused") })
	f.audit.Warn().Str("customer_id", chi.URLParam(r, "id")).Str("requested_by", r.Header.Get("X-Requested-By")).
		Str("correlation_id", httpapi.CorrelationIDFrom(r.Context())).Int("status", p.Status).Str("outcome", "refused").
		Msg("forget refused")
	httpapi.WriteProblem(w, r, p)
}

// requester reads X-Requested-By: who asked, for the audit log (a person
// or a system; "unnamed" when absent).
func requester(r *http.Request) (string, error) {
	who := r.Header.Get("X-Requested-By")
	if who == "" {
		return "unnamed", nil
	}
	if len(who) > 100 {
		return "", badHeader("X-Requested-By", "X-Requested-By must be at most 100 bytes")
	}
	for _, c := range who {
		if c < 0x20 || c > 0x7e {
			return "", badHeader("X-Requested-By", "X-Requested-By must be printable ASCII")
		}
	}
	return who, nil
}

// errPersonalOff refuses a forget when personal data is not sealed: there
// is no key whose destruction would forget anything.
var errPersonalOff = httpapi.NewProblem(http.StatusNotImplemented, "personal-data-off", "Personal data is not sealed",
	"this service runs with personal.enabled=false: customers' personal data is stored in clear, so it cannot forget a customer").WithCode("personal.disabled")

// forget records CustomerForgotten through the normal commit path (so it
// is published, and the projectors scrub their copies), then destroys the
// customer's data key. The event comes first: should the process die
// between the two, the customer is already refused every command, and a
// retry of the request (with or without its Idempotency-Key) finds the
// event, decides nothing new and destroys the key. A repeated forget
// answers 200 like the first.
func (a *api) forget(w http.ResponseWriter, r *http.Request) {
	f := a.forgetting
	who, _ := r.Context().Value(requesterKey{}).(string)
	start := time.Now()
	outcome := "invalid"
	defer func() {
		ev := f.audit.Info()
		if outcome != "ok" {
			ev = f.audit.Warn()
		}
		ev.Str("customer_id", chi.URLParam(r, "id")).Str("requested_by", who).Time("at", start.UTC()).
			Str("correlation_id", httpapi.CorrelationIDFrom(r.Context())).Str("outcome", outcome).
			Msg("forget customer")
	}()
	id, ok := a.pathID(w, r)
	if !ok || !a.decodeOptional(w, r, &emptyBody{}) {
		return
	}
	if f.keys == nil {
		outcome = a.fail(w, r, "ForgetCustomer", errPersonalOff)
		return
	}
	destroy := func(ctx context.Context) error {
		if err := f.keys.Forget(ctx, id.String()); err != nil {
			return fmt.Errorf("destroying the data key of customer %s: %w", id, err)
		}
		// This process's cached states of the customer and their orders
		// hold opened personal data (a delivery signature): drop them.
		repository.ForgetCustomer(a.orders, a.customers, id)
		return nil
	}
	outcome = executeThen(a, w, r, a.customers, "ForgetCustomer", "/v1/customers/", id, customer.Command(customer.ForgetCustomer{}), http.StatusOK, "", nil, destroy)
}
