package value

import (
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// Limits from RFC 5321: a forward or reverse path is at most 256 octets
// including the angle brackets, which leaves 254 for the address.
const (
	maxEmailLen      = 254
	maxEmailLocalLen = 64
	maxDomainLabel   = 63
)

// Email is an e-mail address in a strict subset of RFC 5322: a dot-atom
// local part, an @, and a domain of at least two DNS labels.
//
// The whole address is lower-cased, not only the domain. RFC 5321 lets the
// local part be case-sensitive, but no widely used mail provider treats it so,
// and customers are looked up by e-mail: "Ann@x.org" and "ann@x.org" must be
// one customer.
//
// Refused on purpose, although RFC 5322 allows them: quoted local parts,
// comments, display names ("Ann <ann@x.org>"), IP-literal domains, and any
// non-ASCII character. Internationalised domains are accepted only in their
// ASCII (punycode, "xn--") form, because a Unicode domain can impersonate
// another one letter for letter. net/mail is not used because it accepts
// display names, quoted strings and comments that we refuse.
type Email struct {
	addr string
}

// NewEmail validates and normalises raw.
func NewEmail(raw string) (Email, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Email{}, domain.NewValidationError("email.required", "email", "an email address is required")
	}
	if len(s) > maxEmailLen {
		return Email{}, domain.NewValidationError("email.too_long", "email",
			"an email address must be at most 254 characters")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return Email{}, domain.NewValidationError("email.invalid_format", "email",
			"an email address needs an @ between the name and the domain, like ann@example.com")
	}
	local, host := s[:at], s[at+1:]
	if strings.IndexByte(host, '@') >= 0 {
		return Email{}, domain.NewValidationError("email.invalid_format", "email",
			"an email address must contain exactly one @")
	}
	if local == "" {
		return Email{}, domain.NewValidationError("email.invalid_local_part", "email",
			"an email address needs a name before the @")
	}
	if len(local) > maxEmailLocalLen {
		return Email{}, domain.NewValidationError("email.local_part_too_long", "email",
			"the part of an email address before the @ must be at most 64 characters")
	}
	if !isDotAtom(local) {
		return Email{}, domain.NewValidationError("email.invalid_local_part", "email",
			"the part of an email address before the @ may use letters, digits and !#$%&'*+-/=?^_`{|}~, "+
				"with single dots between them")
	}
	if !isHostname(host) {
		return Email{}, domain.NewValidationError("email.invalid_domain", "email",
			"the domain of an email address must be a name like example.com: labels of letters, digits "+
				"and hyphens separated by single dots")
	}
	// Every byte is ASCII by now, so lower-casing cannot change the length
	// or let a Unicode look-alike fold into an ASCII letter.
	return Email{addr: strings.ToLower(s)}, nil
}

// String returns the normalised address, or "" for the zero value.
func (e Email) String() string { return e.addr }

// IsZero reports whether e is the zero value (no address).
func (e Email) IsZero() bool { return e.addr == "" }

// LocalPart returns the part before the @.
func (e Email) LocalPart() string {
	local, _, _ := strings.Cut(e.addr, "@")
	return local
}

// Domain returns the part after the @.
func (e Email) Domain() string {
	_, host, _ := strings.Cut(e.addr, "@")
	return host
}

// MarshalText encodes e as its normalised address.
func (e Email) MarshalText() ([]byte, error) { return []byte(e.addr), nil }

// UnmarshalText decodes and validates an address; empty text is the zero
// value, opaque text (sealed or redacted, see IsOpaque) is kept as it is.
func (e *Email) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*e = Email{}
		return nil
	}
	if v, ok := OpaqueEmail(string(b)); ok {
		*e = v
		return nil
	}
	v, err := NewEmail(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// isDotAtom reports whether s is an RFC 5322 dot-atom: atoms of atext
// joined by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !isAtext(c) {
			return false
		}
	}
	return true
}

func isAtext(c byte) bool {
	if isASCIIAlnum(c) {
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isHostname reports whether s is a DNS name of at least two labels, each
// 1..63 letters, digits or hyphens, not starting or ending with a hyphen.
// The last label must not be all digits, so that "10.0.0.1" is refused:
// a mail domain is a name, and IP literals are not accepted.
func isHostname(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !isLabel(l) {
			return false
		}
	}
	tld := labels[len(labels)-1]
	for i := 0; i < len(tld); i++ {
		if !isASCIIDigit(tld[i]) {
			return true
		}
	}
	return false
}

func isLabel(l string) bool {
	if l == "" || len(l) > maxDomainLabel || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c != '-' && !isASCIIAlnum(c) {
			return false
		}
	}
	return true
}

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

func isASCIIAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isASCIIAlnum(c byte) bool { return isASCIIDigit(c) || isASCIIAlpha(c) }
