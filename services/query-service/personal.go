package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gocql/gocql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
	"github.com/orderstream/orderstream/pkg/httpapi"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/personal"
)

// PersonalConfig switches the opening of personal data on (personal.*
// keys, docs/personal-data.md): command-service seals customers' personal
// fields with their data keys, and query-service, the one reader that
// shows them, opens them in its answers. The keys of personal.Config
// (kek_file, cache_ttl, cache_size, timeout) sit beside enabled; the KEK
// must be command-service's.
//
// Off in the binary's defaults, like command-service's: opening needs the
// key-encryption key, which an operator provides; `make up` and the Helm
// charts switch it on. Off, every sealed value is answered as
// personal.Redacted (the service holds no key), clear values as they are.
type PersonalConfig struct {
	Enabled         bool `mapstructure:"enabled" help:"open customers' sealed personal data (name, email, phone, addresses, delivery signatures) in answers with their data keys from customer_keys, never creating one; needs personal.kek_file (command-service's). Off: sealed values are answered as [redacted]"`
	personal.Config `mapstructure:",squash"`
}

// Validate checks the keys that matter: none while off.
func (c PersonalConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	return c.Config.Validate()
}

// opener opens, in place, the personal fields of a contract message of a
// customer's (the owner's) aggregate: *personal.Keyring, or
// sealedRedactor when personal data is off.
type opener interface {
	Open(ctx context.Context, m proto.Message, customerID, aggregateID string) (personal.Outcome, error)
}

// newOpener returns the keyring of cfg (read only: query-service looks
// keys up and never creates one) behind the cache of keyless customers,
// or, when personal data is off, the redactor of sealed values.
func newOpener(session *gocql.Session, cfg PersonalConfig, logger zerolog.Logger, reg prometheus.Registerer) (opener, error) {
	if !cfg.Enabled {
		logger.Warn().Msg("personal.enabled is false: sealed personal data is answered as " + personal.Redacted)
		return sealedRedactor{}, nil
	}
	kek, err := personal.ReadKEKFile(cfg.KEKFile)
	if err != nil {
		return nil, config.Errorf("personal.kek_file", "%v", err)
	}
	wrapper, err := personal.NewFileWrapper(kek)
	if err != nil {
		return nil, config.Errorf("personal.kek_file", "%v", err)
	}
	keys, err := personal.NewKeyring(cfg.Config, personal.NewCQLStore(session), wrapper, logger, reg)
	if err != nil {
		return nil, err
	}
	return newKeylessCache(keys, cfg.Config, reg)
}

// personalData opens the personal fields of the answers: the customer's
// name, email, phone and addresses, an order's delivery signature, and
// those fields in the payloads of a history. A forgotten customer's fields
// read personal.Redacted (an answer, not an error); a value that does not
// decrypt otherwise (another KEK, an altered or misplaced ciphertext) is a
// 500 personal.unreadable, counted in
// orderstream_personal_decrypt_failures_total.
type personalData struct {
	open   opener
	logger zerolog.Logger
}

// openMessage opens m, owned by customerID, of aggregateID.
func (p personalData) openMessage(ctx context.Context, m proto.Message, customerID, aggregateID string) (personal.Outcome, error) {
	o, err := p.open.Open(ctx, m, customerID, aggregateID)
	if err == nil {
		return o, nil
	}
	for _, unreadable := range []error{personal.ErrAuth, personal.ErrMalformed, personal.ErrNoKey, personal.ErrUnknownKEK} {
		if errors.Is(err, unreadable) {
			p.logger.Error().Err(err).Str("customer_id", customerID).Str("aggregate_id", aggregateID).
				Str("message", string(m.ProtoReflect().Descriptor().FullName())).Msg("personal data does not decrypt")
			return o, errUnreadable
		}
	}
	// The store of keys unavailable, a deadline: httpapi.Fail decides.
	return o, fmt.Errorf("opening the personal data of %s: %w", aggregateID, err)
}

// errUnreadable answers personal data that does not decrypt, and is not
// a forgotten customer's.
var errUnreadable = httpapi.NewProblem(http.StatusInternalServerError, "personal-data-unreadable", "Personal data unreadable",
	"personal data of this answer does not decrypt with its customer's key: the service's key-encryption key is not the one it was sealed under, or the stored value was altered").
	WithCode("personal.unreadable")

// customerBody opens the personal fields of a customer answer.
func (p personalData) customerBody(ctx context.Context, body any) (any, error) {
	b := body.(customerBody)
	m := &customerv1.CustomerRegistered{Name: b.Name, Email: b.Email, Phone: b.Phone}
	if _, err := p.openMessage(ctx, m, b.ID, b.ID); err != nil {
		return nil, err
	}
	b.Name, b.Email, b.Phone = m.GetName(), m.GetEmail(), m.GetPhone()
	if len(b.Addresses) > 0 {
		addresses := make([]address, len(b.Addresses))
		for i, a := range b.Addresses {
			// The fields of an address are sealed as CustomerAddressAdded
			// and …Updated carry them: under "address.<field>".
			m := &customerv1.CustomerAddressAdded{Address: &customerv1.Address{Label: a.Label, Line1: a.Line1, Line2: a.Line2,
				City: a.City, Region: a.Region, PostalCode: a.PostalCode, Country: a.Country}}
			if _, err := p.openMessage(ctx, m, b.ID, b.ID); err != nil {
				return nil, err
			}
			f := m.GetAddress()
			addresses[i] = address{ID: a.ID, Label: f.GetLabel(), Line1: f.GetLine1(), Line2: f.GetLine2(), City: f.GetCity(),
				Region: f.GetRegion(), PostalCode: f.GetPostalCode(), Country: f.GetCountry()}
		}
		b.Addresses = addresses
	}
	return b, nil
}

// orderBody opens an order answer's delivery signature, sealed under its
// customer's key for the order.
func (p personalData) orderBody(ctx context.Context, body any) (any, error) {
	b := body.(orderBody)
	if b.DeliverySignature == "" {
		return b, nil
	}
	m := &orderv1.OrderDelivered{Signature: b.DeliverySignature}
	if _, err := p.openMessage(ctx, m, b.CustomerID, b.ID); err != nil {
		return nil, err
	}
	b.DeliverySignature = m.GetSignature()
	return b, nil
}

// event opens the personal fields of a stored event's payload, in the
// layout it was stored in, for a history; owner returns the customer whose
// data it is. A payload that holds none is left as it is, byte for byte;
// one that does not decode is answered as the JSON string
// personal.Redacted, since what it holds cannot be told.
func (p personalData) event(ctx context.Context, aggregateType string, e *eventstore.Event, owner func(context.Context) (string, error)) error {
	if !eventcodec.HasPersonalFields(aggregateType, e.Type) {
		return nil
	}
	m, err := eventcodec.PayloadVersion(aggregateType, e.Type, e.Version, e.Data)
	if err != nil {
		p.logger.Warn().Err(err).Str("aggregate_id", e.AggregateID.String()).Int64("sequence", e.Sequence).
			Msg("a stored event that may hold personal data does not decode; answered redacted")
		e.Data, _ = json.Marshal(personal.Redacted)
		return nil
	}
	customerID, err := owner(ctx)
	if err != nil {
		return err
	}
	o, err := p.openMessage(ctx, m, customerID, e.AggregateID.String())
	if err != nil {
		return err
	}
	if o.Opened == 0 && o.Redacted == 0 {
		return nil
	}
	data, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding event %d of %s: %w", e.Sequence, e.AggregateID, err)
	}
	e.Data = data
	return nil
}

// owner returns the customer whose personal data the events of the
// aggregate hold: the customer itself, or an order's customer, read from
// its OrderCreated (the first event) once, and only if asked. It serves
// one request (not safe for concurrent use).
func (a *api) owner(aggregateType string, id gocql.UUID) func(context.Context) (string, error) {
	if aggregateType == customer.AggregateType {
		return func(context.Context) (string, error) { return id.String(), nil }
	}
	var (
		asked      bool
		customerID string
		err        error
	)
	return func(ctx context.Context) (string, error) {
		if asked {
			return customerID, err
		}
		asked = true
		found := false
		err = a.store.Events(ctx, id, 0, 1, func(e eventstore.Event) error {
			if e.Type != order.EventOrderCreated {
				return fmt.Errorf("event 1 of order %s is %s, not %s", id, e.Type, order.EventOrderCreated)
			}
			found = true
			var decodeErr error
			customerID, decodeErr = eventcodec.OrderCustomerID(e.Data)
			return decodeErr
		})
		if err == nil && !found {
			err = fmt.Errorf("order %s has no first event", id)
		}
		return customerID, err
	}
}

// sealedRedactor is the opener of a service without keys: every sealed
// personal value reads personal.Redacted, clear values stay as they are.
type sealedRedactor struct{}

// Open implements opener.
func (sealedRedactor) Open(_ context.Context, m proto.Message, _, _ string) (personal.Outcome, error) {
	var o personal.Outcome
	walkPersonal(m.ProtoReflect(), func(v string, set func(string)) {
		if personal.IsSealed(v) {
			set(personal.Redacted)
			o.Redacted++
		} else {
			o.Plain++
		}
	})
	return o, nil
}

// keyring is what keylessCache needs of *personal.Keyring.
type keyring interface {
	opener
	Lookup(ctx context.Context, customerID string) (*personal.Key, error)
}

// keylessCache remembers, for cache_ttl, the customers who have no data
// key (registered before personal data was switched on), so that
// answering their clear fields does not read customer_keys every time:
// the keyring caches keys and forgotten customers, never "no key" (a key
// may be created any moment). Only a message without a sealed value takes
// this path; a sealed one always goes to the keyring. Should such a
// customer be forgotten, this process shows their clear fields for at
// most cache_ttl more, the bound the keyring's cache already sets.
type keylessCache struct {
	keys  keyring
	cache *lru.Cache[string, time.Time] // customer id → until when it is known keyless
	ttl   time.Duration
	now   func() time.Time
	hits  prometheus.Counter
}

func newKeylessCache(keys keyring, cfg personal.Config, reg prometheus.Registerer) (*keylessCache, error) {
	cache, err := lru.New[string, time.Time](cfg.CacheSize)
	if err != nil {
		return nil, err
	}
	c := &keylessCache{keys: keys, cache: cache, ttl: cfg.CacheTTL, now: time.Now,
		hits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "query", Name: "personal_keyless_hits_total",
			Help: "Answers whose personal fields are all clear and whose customer is known (for personal.cache_ttl) to have no data key, answered without reading customer_keys."})}
	if reg != nil {
		if err := reg.Register(c.hits); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Open implements opener.
func (c *keylessCache) Open(ctx context.Context, m proto.Message, customerID, aggregateID string) (personal.Outcome, error) {
	var values, sealed int
	walkPersonal(m.ProtoReflect(), func(v string, _ func(string)) {
		values++
		if personal.IsSealed(v) {
			sealed++
		}
	})
	if values == 0 || sealed > 0 {
		return c.keys.Open(ctx, m, customerID, aggregateID)
	}
	if until, ok := c.cache.Get(customerID); ok && c.now().Before(until) {
		c.hits.Inc()
		return personal.Outcome{Plain: values}, nil
	}
	switch _, err := c.keys.Lookup(ctx, customerID); {
	case errors.Is(err, personal.ErrNoKey):
		c.cache.Add(customerID, c.now().Add(c.ttl))
		return personal.Outcome{Plain: values}, nil // what the keyring answers too
	case err != nil && !errors.Is(err, personal.ErrForgotten):
		return personal.Outcome{}, err
	}
	// The keyring has cached what it found (a key, a forgotten customer):
	// Open answers from its cache.
	return c.keys.Open(ctx, m, customerID, aggregateID)
}

// walkPersonal calls visit with every non-empty personal string value of
// m, at any depth, and a function that replaces it. Replacements are
// applied once the walk has ended, so that m does not change while it is
// ranged over.
func walkPersonal(m protoreflect.Message, visit func(v string, set func(string))) {
	var deferred []func()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case personal.IsPersonal(fd) && fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if s := l.Get(i).String(); s != "" {
					visit(s, func(n string) { deferred = append(deferred, func() { l.Set(i, protoreflect.ValueOfString(n)) }) })
				}
			}
		case personal.IsPersonal(fd) && fd.Kind() == protoreflect.StringKind:
			if s := v.String(); s != "" {
				visit(s, func(n string) { deferred = append(deferred, func() { m.Set(fd, protoreflect.ValueOfString(n)) }) })
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				walkPersonal(mv.Message(), visit)
				return true
			})
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				walkPersonal(l.Get(i).Message(), visit)
			}
		case !fd.IsMap() && fd.Message() != nil:
			walkPersonal(v.Message(), visit)
		}
		return true
	})
	for _, f := range deferred {
		f()
	}
}
