package eventcodec

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	orderv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/order/v1"
	"github.com/orderstream/orderstream/pkg/personal"
)

// Personal data in stored events (issue 20, docs/personal-data.md).
//
// The codecs themselves neither seal nor open: EncodeEvent writes clear
// contracts and DecodeEvent reads whatever the personal fields hold. What
// they hold in event_store is sealed text ("pd:…") for events written with
// personal data switched on, clear text for older ones, and "[redacted]"
// after a reader opened the event of a forgotten customer. DecodeEvent
// keeps sealed and redacted values verbatim, without validating them
// (value.IsOpaque), so that a reader without a key (a projector) can fold
// them and copy the sealed text on. Only the service that decides or shows
// personal data seals (SealData, before an event is stored) and opens
// (OpenData, after it is read), through a Keyring.

// Keyring seals and opens the personal fields of a contract message under
// the data key of the customer they belong to; *personal.Keyring.
type Keyring interface {
	Seal(ctx context.Context, m proto.Message, customerID, aggregateID string) error
	Open(ctx context.Context, m proto.Message, customerID, aggregateID string) (personal.Outcome, error)
}

// HasPersonalFields reports whether events of this type can carry personal
// data (their contract has a field marked personal, at any depth): only
// those need a key to seal or open. Unknown types have none.
func HasPersonalFields(aggregateType, eventType string) bool {
	m, err := newMessage(aggregateType, eventType)
	if err != nil {
		return false
	}
	return hasPersonal(m.ProtoReflect().Descriptor())
}

// SealData returns the stored data (current layout) of an event with its
// personal fields sealed under the customer's key, bound to aggregateID
// (the customer for customer events, the order for order events). An event
// without personal values comes back unchanged. personal.ErrForgotten for
// a forgotten customer's personal values: nothing new of theirs is stored.
func SealData(ctx context.Context, k Keyring, aggregateType, eventType string, data []byte, customerID, aggregateID string) ([]byte, error) {
	if !HasPersonalFields(aggregateType, eventType) {
		return data, nil
	}
	m, err := Payload(aggregateType, eventType, data)
	if err != nil {
		return nil, err
	}
	if err := k.Seal(ctx, m, customerID, aggregateID); err != nil {
		return nil, fmt.Errorf("sealing %s: %w", eventType, err)
	}
	return marshal.Marshal(m)
}

// OpenData returns the stored data (current layout) of an event with its
// sealed personal fields opened; of a forgotten customer every personal
// value reads personal.Redacted (the outcome says so; not an error). Clear
// values (written before personal data was switched on) stay as they are.
func OpenData(ctx context.Context, k Keyring, aggregateType, eventType string, data []byte, customerID, aggregateID string) ([]byte, personal.Outcome, error) {
	if !HasPersonalFields(aggregateType, eventType) {
		return data, personal.Outcome{}, nil
	}
	m, err := Payload(aggregateType, eventType, data)
	if err != nil {
		return nil, personal.Outcome{}, err
	}
	o, err := k.Open(ctx, m, customerID, aggregateID)
	if err != nil {
		return nil, o, fmt.Errorf("opening %s: %w", eventType, err)
	}
	if o.Opened == 0 && o.Redacted == 0 {
		return data, o, nil
	}
	out, err := marshal.Marshal(m)
	return out, o, err
}

// RedactData returns the stored data (current layout) of an event with
// every non-empty personal value replaced by personal.Redacted: what is
// stored of a forgotten customer's personal data that arrives after the
// forget (a delivery signature of their order).
func RedactData(aggregateType, eventType string, data []byte) ([]byte, error) {
	if !HasPersonalFields(aggregateType, eventType) {
		return data, nil
	}
	m, err := Payload(aggregateType, eventType, data)
	if err != nil {
		return nil, err
	}
	o, err := personal.OpenFields(m, "", nil) // no key: every value redacted
	if err != nil || o.Redacted == 0 {
		return data, err
	}
	return marshal.Marshal(m)
}

// OrderCustomerID returns the customer id an OrderCreated's data names:
// the owner of the personal data of that order's events.
func OrderCustomerID(data []byte) (string, error) {
	var m orderv1.OrderCreated
	if err := unmarshal.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("decoding %s: %w", order.EventOrderCreated, err)
	}
	return m.GetCustomerId(), nil
}

func newMessage(aggregateType, eventType string) (proto.Message, error) {
	switch aggregateType {
	case order.AggregateType:
		return newOrderMessage(eventType)
	case customer.AggregateType:
		return newCustomerMessage(eventType)
	}
	return nil, fmt.Errorf("unknown aggregate type %q", aggregateType)
}

var personalTypes sync.Map // protoreflect.FullName → bool

func hasPersonal(md protoreflect.MessageDescriptor) bool {
	if v, ok := personalTypes.Load(md.FullName()); ok {
		return v.(bool)
	}
	has := walkPersonal(md, map[protoreflect.FullName]bool{})
	personalTypes.Store(md.FullName(), has)
	return has
}

func walkPersonal(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	if seen[md.FullName()] {
		return false
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if personal.IsPersonal(fd) {
			return true
		}
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if fd.Message() != nil && walkPersonal(fd.Message(), seen) {
			return true
		}
	}
	return false
}

// PayloadVersion decodes a stored event's data in the layout of its
// stored version into its contract message: the current layout as
// Payload does, or an older one (CustomerRegistered version 1 is a
// CustomerRegisteredV1), for readers that show events as stored.
func PayloadVersion(aggregateType, eventType string, version int32, data []byte) (proto.Message, error) {
	current := int32(1)
	if v, ok := currentVersions[eventType]; ok && aggregateType == customer.AggregateType {
		current = v
	}
	if version == current {
		return Payload(aggregateType, eventType, data)
	}
	if aggregateType == customer.AggregateType && eventType == customer.EventCustomerRegistered && version == 1 {
		var m customerv1.CustomerRegisteredV1
		if err := unmarshal.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("decoding %s version 1: %w", eventType, err)
		}
		return &m, nil
	}
	return nil, fmt.Errorf("no contract for %s %s version %d", aggregateType, eventType, version)
}
