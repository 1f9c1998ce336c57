// Package value holds the domain's value objects: small immutable values
// that validate and normalise on construction, so an Email, a Money or an
// Address that exists is a valid one and the aggregates never re-check it.
//
// Conventions every type here follows:
//   - NewX (or ParseX for enumerations) is the only way to build a valid
//     value; it trims surrounding whitespace and returns a
//     *domain.RuleError with Code and Field set when the input is refused.
//   - The zero value means "absent". IsZero reports it, and aggregates refuse
//     it where a value is required.
//   - String returns the normalised form; feeding it back to the
//     constructor gives the same value.
//   - Values are comparable with ==.
//   - Text values implement encoding.TextMarshaler and TextUnmarshaler,
//     the composite values (Money, OrderItem, Address) json.Marshaler and
//     json.Unmarshaler, so that aggregate state can be snapshotted as JSON
//     (events are stored as protojson of their contracts, pkg/eventcodec).
//     Decoding validates like the constructors do, and the zero value
//     encodes as "" (text) or null (JSON) and decodes back to zero.
//   - Lengths of free text are counted in characters (code points), not
//     bytes; identifiers and codes are ASCII, so there the two agree.
package value
