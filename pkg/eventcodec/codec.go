// Package eventcodec maps the domain's events onto their protobuf contracts
// (proto/, generated into pkg/gen) and back, and stores them as protojson:
// the JSON of event_store.event_data and of every record the relay
// publishes. It also holds the registry of event versions and upcasters
// that every reader shares, and the state codecs used for snapshots.
package eventcodec

import (
	"encoding/json"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventstore"
)

var (
	marshal = protojson.MarshalOptions{}
	// Unknown fields are dropped: an older reader can read an event a
	// newer writer extended with a field.
	unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// Versions of event layouts that differ from 1. Every reader upcasts older
// layouts to these before decoding.
var currentVersions = map[string]int32{
	customer.EventCustomerRegistered: 2,
}

// NewUpcasters returns the registry of current versions and upcasters of
// every orderstream event.
func NewUpcasters() *eventstore.Upcasters {
	u := eventstore.NewUpcasters()
	for typ, v := range currentVersions {
		u.SetCurrent(typ, v)
	}
	u.Register(customer.EventCustomerRegistered, 1, upcastCustomerRegisteredV1)
	return u
}

// OrderCodec stores order events and snapshots of order state.
type OrderCodec struct{}

// EncodeEvent implements eventstore.Codec.
func (OrderCodec) EncodeEvent(e order.Event) (string, []byte, error) {
	m, err := orderToProto(e)
	if err != nil {
		return "", nil, err
	}
	data, err := marshal.Marshal(m)
	return e.EventType(), data, err
}

// DecodeEvent implements eventstore.Codec.
func (OrderCodec) DecodeEvent(eventType string, data []byte) (order.Event, error) {
	m, err := newOrderMessage(eventType)
	if err != nil {
		return nil, err
	}
	if err := unmarshal.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", eventType, err)
	}
	return orderFromProto(m)
}

// EncodeState implements eventstore.Codec: snapshots are the state's JSON.
func (OrderCodec) EncodeState(s order.State) ([]byte, error) { return json.Marshal(s) }

// DecodeState implements eventstore.Codec; value objects validate as they
// decode, so a corrupt snapshot is refused (and ignored by the loader).
func (OrderCodec) DecodeState(b []byte) (order.State, error) {
	var s order.State
	err := json.Unmarshal(b, &s)
	return s, err
}

// StateVersion implements eventstore.Codec.
func (OrderCodec) StateVersion() int32 { return 1 }

// CustomerCodec stores customer events and snapshots of customer state.
type CustomerCodec struct{}

// EncodeEvent implements eventstore.Codec.
func (CustomerCodec) EncodeEvent(e customer.Event) (string, []byte, error) {
	m, err := customerToProto(e)
	if err != nil {
		return "", nil, err
	}
	data, err := marshal.Marshal(m)
	return e.EventType(), data, err
}

// DecodeEvent implements eventstore.Codec.
func (CustomerCodec) DecodeEvent(eventType string, data []byte) (customer.Event, error) {
	m, err := newCustomerMessage(eventType)
	if err != nil {
		return nil, err
	}
	if err := unmarshal.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", eventType, err)
	}
	return customerFromProto(m)
}

// EncodeState implements eventstore.Codec.
func (CustomerCodec) EncodeState(s customer.State) ([]byte, error) { return json.Marshal(s) }

// DecodeState implements eventstore.Codec.
func (CustomerCodec) DecodeState(b []byte) (customer.State, error) {
	var s customer.State
	err := json.Unmarshal(b, &s)
	return s, err
}

// StateVersion implements eventstore.Codec.
func (CustomerCodec) StateVersion() int32 { return 1 }

// Payload decodes a stored event's data (current layout) into its protobuf
// message, for building envelopes.
func Payload(aggregateType, eventType string, data []byte) (proto.Message, error) {
	m, err := newMessage(aggregateType, eventType)
	if err != nil {
		return nil, err
	}
	if err := unmarshal.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", eventType, err)
	}
	return m, nil
}

// enumFromProto converts a contract enum number to a domain enum. protojson
// accepts any int32 for an open enum, and a plain conversion to the uint8
// domain type would wrap an unknown number such as 258 onto a valid value;
// out of range it returns 0, which no domain enum accepts as valid.
func enumFromProto[D ~uint8](n int32) D {
	if n < 0 || n > math.MaxUint8 {
		return 0
	}
	return D(n)
}
