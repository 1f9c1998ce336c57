// Package personal is orderstream's crypto-shredding of personal data
// (DESIGN.md, "Personal data"; docs/personal-data.md).
//
// The string fields of the event contracts marked
// `[(orderstream.options.v1.personal) = true]` are sealed with AES-256-GCM
// under a data key of the customer they belong to, before the event is
// stored or published. The data keys live in customer_keys (KeyStore),
// each wrapped by a key-encryption key (KeyWrapper: a file today, room for
// a KMS). Forgetting a customer destroys their key in one write; from then
// on opening their fields yields the Redacted marker, an outcome and not an
// error. A Keyring ties the store, the wrapper, a bounded cache of unwrapped
// keys and the metrics together.
//
// Ciphertext format, version 1. A sealed field holds the text
//
//	"pd:" + base64url_nopad(0x01 | nonce[12] | AES-256-GCM(plaintext) | tag[16])
//
// The first byte of the binary form is the format version; the 96-bit
// nonce is random for every value (one key seals one customer's fields, far
// below GCM's 2^32 random-nonce bound). The associated data binds the value
// to where it belongs, so that a ciphertext copied to another customer,
// another aggregate or another field does not open:
//
//	0x01 | uvarint(len(aggregate id)) | aggregate id | field path
//
// The field path is the field names from the event message down, joined by
// dots ("address.line1"), without list indexes or the message name, so that
// upcasting an event to a newer layout that keeps the field's name keeps
// its ciphertext readable. An empty value is left empty (it holds nothing);
// a value without the "pd:" prefix is a clear value written before
// encryption was switched on, and is read as it is.
//
// GCM hides the content, not the length: a sealed value is as long as its
// plaintext plus 29 bytes, base64-encoded.
//
// command-service seals and opens through repository.Sealing, and
// query-service opens; docs/personal-data.md describes the wiring.
package personal

import "errors"

// Redacted replaces every personal field of a forgotten customer when it is
// opened: readers show it instead of the value, projectors write it (or
// nothing) instead of the value.
const Redacted = "[redacted]"

var (
	// ErrForgotten: the customer was forgotten; their data key is gone and
	// no new one is ever created for them.
	ErrForgotten = errors.New("personal: customer forgotten")
	// ErrNoKey: the customer has no data key (and was not forgotten).
	ErrNoKey = errors.New("personal: customer has no data key")
	// ErrMalformed: a sealed value is not in a known ciphertext format.
	ErrMalformed = errors.New("personal: malformed ciphertext")
	// ErrAuth: a sealed value does not open under the key, aggregate and
	// field given: sealed under another key, moved, or altered.
	ErrAuth = errors.New("personal: ciphertext does not authenticate")
	// ErrUnknownKEK: a data key was wrapped by a key-encryption key this
	// process does not hold.
	ErrUnknownKEK = errors.New("personal: data key wrapped by an unknown key-encryption key")
)
