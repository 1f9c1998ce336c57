package value

import "strings"

// Opaque personal values. The personal fields of the event contracts
// (name, email, phone, the fields of an address, a delivery signature) are
// sealed by pkg/personal before they are stored: their text is then
// "pd:" followed by base64url, or, once the customer is forgotten, the
// marker "[redacted]". Services that hold no key (the projectors) carry
// such text verbatim from the events into their state and rows, so the
// value objects that hold personal data (Email, PhoneNumber, Address)
// accept it from a trusted decoder through the Opaque constructors, and
// when they decode their own JSON or text (state snapshots, projector
// checkpoints), without validating it. The New constructors, which take
// a client's input, still refuse it.
//
// The two spellings are pkg/personal's (personal.IsSealed and
// personal.Redacted); the domain stays pure and does not import it, and a
// test there keeps them equal.
const (
	sealedPrefix   = "pd:"
	redactedMarker = "[redacted]"
)

// IsOpaque reports whether s is a sealed ("pd:…") or redacted
// ("[redacted]") personal value, which no value object validates.
func IsOpaque(s string) bool {
	return strings.HasPrefix(s, sealedPrefix) || s == redactedMarker
}

// OpaqueEmail returns an Email holding the opaque text s, and false when s
// is not opaque (then NewEmail applies).
func OpaqueEmail(s string) (Email, bool) {
	if !IsOpaque(s) {
		return Email{}, false
	}
	return Email{addr: s}, true
}

// OpaquePhoneNumber returns a PhoneNumber holding the opaque text s, and
// false when s is not opaque (then NewPhoneNumber applies).
func OpaquePhoneNumber(s string) (PhoneNumber, bool) {
	if !IsOpaque(s) {
		return PhoneNumber{}, false
	}
	return PhoneNumber{e164: s}, true
}

// OpaqueAddress returns an Address holding f as it is when any of its
// fields is opaque (its fields are sealed or redacted together), and false
// otherwise (then NewAddress applies).
func OpaqueAddress(f AddressFields) (Address, bool) {
	for _, s := range []string{f.Label, f.Line1, f.Line2, f.City, f.Region, f.PostalCode, f.Country} {
		if IsOpaque(s) {
			return Address{label: f.Label, line1: f.Line1, line2: f.Line2, city: f.City, region: f.Region,
				postalCode: f.PostalCode, country: CountryCode{code: f.Country}}, true
		}
	}
	return Address{}, false
}
