package personal

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	optionsv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/options/v1"
)

// IsPersonal reports whether a field carries the
// (orderstream.options.v1.personal) option.
func IsPersonal(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	v, _ := proto.GetExtension(opts, optionsv1.E_Personal).(bool)
	return v
}

// plan is what the walk needs of one message type: its personal fields
// and the message fields that may hold more.
type plan struct {
	personal []protoreflect.FieldDescriptor
	nested   []protoreflect.FieldDescriptor
}

var plans sync.Map // protoreflect.FullName → *plan or error

func planOf(md protoreflect.MessageDescriptor) (*plan, error) {
	if v, ok := plans.Load(md.FullName()); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*plan), nil
	}
	p := &plan{}
	var err error
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case IsPersonal(fd) && (fd.Kind() != protoreflect.StringKind || fd.IsMap()):
			err = fmt.Errorf("personal: %s is marked personal but only string and repeated string fields can be", fd.FullName())
		case IsPersonal(fd):
			p.personal = append(p.personal, fd)
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind,
			!fd.IsMap() && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind):
			p.nested = append(p.nested, fd)
		}
	}
	if err != nil {
		plans.Store(md.FullName(), err)
		return nil, err
	}
	plans.Store(md.FullName(), p)
	return p, nil
}

// value is one non-empty personal string value found in a message.
type value struct {
	path string
	get  func() string
	set  func(string)
}

// personalValues lists the non-empty personal values of m, walking into
// its set message fields, lists and maps.
func personalValues(m protoreflect.Message, prefix string, out []value) ([]value, error) {
	p, err := planOf(m.Descriptor())
	if err != nil {
		return nil, err
	}
	for _, fd := range p.personal {
		path := prefix + string(fd.Name())
		if fd.IsList() {
			if !m.Has(fd) {
				continue
			}
			list := m.Mutable(fd).List()
			for i := range list.Len() {
				if list.Get(i).String() == "" {
					continue
				}
				out = append(out, value{path: path,
					get: func() string { return list.Get(i).String() },
					set: func(s string) { list.Set(i, protoreflect.ValueOfString(s)) }})
			}
			continue
		}
		if m.Get(fd).String() == "" {
			continue
		}
		out = append(out, value{path: path,
			get: func() string { return m.Get(fd).String() },
			set: func(s string) { m.Set(fd, protoreflect.ValueOfString(s)) }})
	}
	for _, fd := range p.nested {
		if !m.Has(fd) {
			continue
		}
		path := prefix + string(fd.Name()) + "."
		switch {
		case fd.IsMap():
			var walkErr error
			m.Mutable(fd).Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
				out, walkErr = personalValues(v.Message(), path, out)
				return walkErr == nil
			})
			if walkErr != nil {
				return nil, walkErr
			}
		case fd.IsList():
			list := m.Mutable(fd).List()
			for i := range list.Len() {
				if out, err = personalValues(list.Get(i).Message(), path, out); err != nil {
					return nil, err
				}
			}
		default:
			if out, err = personalValues(m.Mutable(fd).Message(), path, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// SealFields seals, in place, every non-empty personal value of m under
// key, bound to aggregateID and the value's field path. It is not
// idempotent: a message is sealed once, after it is built from the domain
// event.
func SealFields(m proto.Message, aggregateID string, key *Key) (int, error) {
	values, err := personalValues(m.ProtoReflect(), "", nil)
	if err != nil {
		return 0, err
	}
	for _, v := range values {
		v.set(key.SealString(aggregateID, v.path, v.get()))
	}
	return len(values), nil
}

// Outcome counts what opening a message found among its non-empty personal
// values.
type Outcome struct {
	// Opened values were sealed and are decrypted now.
	Opened int
	// Plain values were stored in clear, before encryption was switched
	// on, and are as they were.
	Plain int
	// Redacted values belong to a forgotten customer and now read
	// Redacted (sealed or plain alike).
	Redacted int
}

// IsRedacted reports whether the message's personal values were redacted.
func (o Outcome) IsRedacted() bool { return o.Redacted > 0 }

// OpenFields opens, in place, every sealed personal value of m. With a nil
// key (a forgotten customer) every non-empty personal value is set to
// Redacted instead. It stops at the first value that does not open
// (ErrMalformed, ErrAuth), leaving m partly opened.
func OpenFields(m proto.Message, aggregateID string, key *Key) (Outcome, error) {
	values, err := personalValues(m.ProtoReflect(), "", nil)
	if err != nil {
		return Outcome{}, err
	}
	return openValues(values, aggregateID, key)
}

func openValues(values []value, aggregateID string, key *Key) (Outcome, error) {
	var o Outcome
	for _, v := range values {
		s := v.get()
		switch {
		case key == nil:
			v.set(Redacted)
			o.Redacted++
		case !IsSealed(s):
			o.Plain++
		default:
			plain, err := key.OpenString(aggregateID, v.path, s)
			if err != nil {
				return o, fmt.Errorf("opening %s: %w", v.path, err)
			}
			v.set(plain)
			o.Opened++
		}
	}
	return o, nil
}

// Seal seals the personal values of an event message of the customer
// (creating their key on first use) bound to the event's aggregate, which
// is the customer for customer events and the order for order events.
// ErrForgotten for a forgotten customer: nothing of theirs is stored any
// more. A message without personal values needs no key.
func (k *Keyring) Seal(ctx context.Context, m proto.Message, customerID, aggregateID string) error {
	values, err := personalValues(m.ProtoReflect(), "", nil)
	if err != nil || len(values) == 0 {
		return err
	}
	key, err := k.KeyFor(ctx, customerID)
	if err != nil {
		return err
	}
	for _, v := range values {
		v.set(key.SealString(aggregateID, v.path, v.get()))
	}
	k.fields.WithLabelValues("sealed").Add(float64(len(values)))
	return nil
}

// Open opens the personal values of an event message of the customer in
// place. Of a forgotten customer every personal value reads Redacted (the
// outcome says so; it is not an error). Clear values stored before
// encryption was switched on are left as they are. A value that does not
// open is an error (ErrMalformed, ErrAuth; ErrNoKey when the customer has
// no key at all), counted in decrypt_failures_total.
func (k *Keyring) Open(ctx context.Context, m proto.Message, customerID, aggregateID string) (Outcome, error) {
	values, err := personalValues(m.ProtoReflect(), "", nil)
	if err != nil || len(values) == 0 {
		return Outcome{}, err
	}
	key, err := k.Lookup(ctx, customerID)
	switch {
	case errors.Is(err, ErrForgotten):
		key = nil
	case errors.Is(err, ErrNoKey) && !anySealed(values):
		// Only clear values, of a customer who never had a key: stored
		// before encryption was switched on.
		o := Outcome{Plain: len(values)}
		k.fields.WithLabelValues("plain").Add(float64(o.Plain))
		return o, nil
	case err != nil:
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrUnknownKEK) { // counted by load
			k.decryptFailures.WithLabelValues(failureReason(err)).Inc()
		}
		return Outcome{}, err
	}
	o, err := openValues(values, aggregateID, key)
	k.fields.WithLabelValues("opened").Add(float64(o.Opened))
	k.fields.WithLabelValues("plain").Add(float64(o.Plain))
	k.fields.WithLabelValues("redacted").Add(float64(o.Redacted))
	if err != nil {
		k.decryptFailures.WithLabelValues(failureReason(err)).Inc()
		k.logger.Warn().Err(err).Str("customer_id", customerID).Str("aggregate_id", aggregateID).
			Str("message", string(m.ProtoReflect().Descriptor().FullName())).Msg("personal field does not decrypt")
	}
	return o, err
}

func anySealed(values []value) bool {
	for _, v := range values {
		if IsSealed(v.get()) {
			return true
		}
	}
	return false
}

func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrNoKey):
		return "no_key"
	case errors.Is(err, ErrUnknownKEK):
		return "unknown_kek"
	}
	return "store"
}
