package text_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/internal/text"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"plain", "Ann Lee", "Ann Lee", true},
		{"trimmed", " \t Ann \n", "Ann", true},
		{"no-break spaces trimmed", "\u00a0Ann\u00a0", "Ann", true},
		{"empty", "", "", true},
		{"unicode", "Zoë 日本 🚚", "Zoë 日本 🚚", true},
		{"zero-width joiners allowed", "a\u200cb\u200dc", "a\u200cb\u200dc", true},
		{"inner newline", "a\nb", "", false},
		{"inner tab", "a\tb", "", false},
		{"nul", "a\x00", "", false},
		{"escape", "\x1b[31mred", "", false},
		{"delete", "a\x7f", "", false},
		{"C1 control", "a\u009bb", "", false},
		{"line separator", "a\u2028b", "", false},
		{"paragraph separator", "a\u2029b", "", false},
		{"bidi override", "a\u202eb", "", false},
		{"bidi isolate", "a\u2066b", "", false},
		{"byte order mark", "a\ufeffb", "", false},
		{"invalid utf8", "a\xffb", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := text.Clean(tt.in)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestField(t *testing.T) {
	spec := text.Spec{Code: "thing.name", Field: "name", Label: "the name", Max: 3, Required: true}
	tests := []struct {
		in, want, code string
	}{
		{in: " abc ", want: "abc"},
		{in: "äöü", want: "äöü"},
		{in: "  ", code: "thing.name_required"},
		{in: "abcd", code: "thing.name_too_long"},
		{in: "a\x00", code: "thing.name_invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := text.Field(tt.in, spec)
			if tt.code != "" {
				var rule *domain.RuleError
				require.ErrorAs(t, err, &rule)
				require.Equal(t, tt.code, rule.Code)
				require.Equal(t, "name", rule.Field)
				require.True(t, strings.HasPrefix(rule.Message, "the name "), rule.Message)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	optional := spec
	optional.Required = false
	got, err := text.Field("   ", optional)
	require.NoError(t, err)
	require.Empty(t, got)
}
