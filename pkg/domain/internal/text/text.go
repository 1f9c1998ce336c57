// Package text holds the checks every free-text input of the domain shares,
// so a name, an address line and a cancellation reason are held to the same
// idea of "clean text".
package text

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orderstream/orderstream/pkg/domain"
)

// Clean trims s and reports whether what remains is text a person typed:
// valid UTF-8 without control characters. Besides the C0/C1 controls it
// refuses the line and paragraph separators, which break lines like a
// newline does, and the bidirectional embedding, override and isolate
// controls, which can make stored text display differently from what it is.
// It allows joiners (U+200C, U+200D) because Persian, Indic scripts and
// emoji need them.
func Clean(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return s, false
	}
	for _, r := range s {
		if forbidden(r) {
			return s, false
		}
	}
	return s, true
}

func forbidden(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028', r == '\u2029':
		return true
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return true
	case r == '\uFEFF':
		// A byte-order mark inside text is never intended and makes two
		// visually equal strings compare unequal.
		return true
	}
	return false
}

// Len counts characters (code points), not bytes, because limits such as
// "a name has at most 200 characters" are promises to people typing in any
// script.
func Len(s string) int { return utf8.RuneCountInString(s) }

// Spec describes one free-text input so its errors read the same everywhere.
type Spec struct {
	// Code is the error-code stem; errors append "_required", "_too_long"
	// or "_invalid" to it (for example "order.carrier").
	Code string
	// Field is the input's name in errors.
	Field string
	// Label names the input in messages ("the carrier").
	Label string
	// Max is the largest length in characters.
	Max int
	// Required refuses empty (after trimming) input.
	Required bool
}

// Field returns raw trimmed, or a RuleError saying which rule it broke.
func Field(raw string, spec Spec) (string, error) {
	s, ok := Clean(raw)
	switch {
	case !ok:
		return "", domain.NewValidationError(spec.Code+"_invalid", spec.Field,
			spec.Label+" must be valid text without control characters")
	case s == "" && spec.Required:
		return "", domain.NewValidationError(spec.Code+"_required", spec.Field,
			spec.Label+" is required")
	case Len(s) > spec.Max:
		return "", domain.NewValidationError(spec.Code+"_too_long", spec.Field,
			fmt.Sprintf("%s must be at most %d characters", spec.Label, spec.Max))
	}
	return s, nil
}
