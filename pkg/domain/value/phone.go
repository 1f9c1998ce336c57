package value

import (
	"strings"

	"github.com/orderstream/orderstream/pkg/domain"
)

// E.164 allows at most 15 digits including the country code. No real
// number in service is shorter than 8 digits with its country code, so
// fewer is a typo (or a local number missing its country code).
const (
	minPhoneDigits = 8
	maxPhoneDigits = 15
)

// PhoneNumber is a telephone number in E.164 form, stored as "+" and 8..15
// digits. Input may group digits with spaces, dashes, dots and parentheses,
// as people write them ("+44 (20) 7946-0958"); those are dropped. A local
// number without its country code is refused rather than guessed at.
type PhoneNumber struct {
	e164 string
}

// NewPhoneNumber validates and normalises raw.
func NewPhoneNumber(raw string) (PhoneNumber, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return PhoneNumber{}, domain.NewValidationError("phone.required", "phone", "a phone number is required")
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, s)
	if !strings.HasPrefix(s, "+") {
		return PhoneNumber{}, domain.NewValidationError("phone.invalid_format", "phone",
			"a phone number must start with + and the country code, like +44 20 7946 0958")
	}
	digits := s[1:]
	for i := 0; i < len(digits); i++ {
		if !isASCIIDigit(digits[i]) {
			return PhoneNumber{}, domain.NewValidationError("phone.invalid_format", "phone",
				"a phone number may contain only digits after the +, grouped by spaces, dashes, dots or parentheses")
		}
	}
	if len(digits) < minPhoneDigits || len(digits) > maxPhoneDigits {
		return PhoneNumber{}, domain.NewValidationError("phone.invalid_length", "phone",
			"a phone number must have 8 to 15 digits including the country code")
	}
	if digits[0] == '0' {
		return PhoneNumber{}, domain.NewValidationError("phone.invalid_format", "phone",
			"a phone number's country code cannot start with 0; drop the trunk prefix")
	}
	return PhoneNumber{e164: s}, nil
}

// String returns the number as "+" and digits, or "" for the zero value.
func (p PhoneNumber) String() string { return p.e164 }

// IsZero reports whether p is the zero value (no number).
func (p PhoneNumber) IsZero() bool { return p.e164 == "" }

// MarshalText encodes p in E.164 form.
func (p PhoneNumber) MarshalText() ([]byte, error) { return []byte(p.e164), nil }

// UnmarshalText decodes and validates a number; empty text is the zero
// value, which is how an absent optional phone is stored; opaque text
// (sealed or redacted, see IsOpaque) is kept as it is.
func (p *PhoneNumber) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = PhoneNumber{}
		return nil
	}
	if v, ok := OpaquePhoneNumber(string(b)); ok {
		*p = v
		return nil
	}
	v, err := NewPhoneNumber(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
