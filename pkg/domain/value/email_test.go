package value_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewEmailAccepts(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	label63 := strings.Repeat("b", 63)
	// 64 + 1 + 63+1+63+1+61 = 254
	longest := local64 + "@" + label63 + "." + label63 + "." + strings.Repeat("c", 57) + ".com"
	require.Len(t, longest, 254)

	tests := []struct {
		in, want string
	}{
		{"ann@example.com", "ann@example.com"},
		{"  Ann.Lee@Example.COM \n", "ann.lee@example.com"},
		{"a@b.co", "a@b.co"},
		{"a@b.c", "a@b.c"},
		{"first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"},
		{"!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~@example.org"},
		{"x@my-host.example", "x@my-host.example"},
		{"x@1example.com", "x@1example.com"},
		{"x@123.example", "x@123.example"},
		{"user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{local64 + "@example.com", local64 + "@example.com"},
		{"x@" + label63 + ".com", "x@" + label63 + ".com"},
		{longest, longest},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := value.NewEmail(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, e.String())
			require.False(t, e.IsZero())
			local, host, _ := strings.Cut(tt.want, "@")
			require.Equal(t, local, e.LocalPart())
			require.Equal(t, host, e.Domain())
		})
	}
}

func TestNewEmailRejects(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "email.required"},
		{"blank", " \t\n", "email.required"},
		{"no at", "ann.example.com", "email.invalid_format"},
		{"two ats", "ann@b@example.com", "email.invalid_format"},
		{"quoted local with at", `"a@b"@example.com`, "email.invalid_format"},
		{"empty local", "@example.com", "email.invalid_local_part"},
		{"local too long", strings.Repeat("a", 65) + "@example.com", "email.local_part_too_long"},
		{"total too long", strings.Repeat("a", 64) + "@" + strings.Repeat("b.", 94) + "com", "email.too_long"},
		{"leading dot", ".ann@example.com", "email.invalid_local_part"},
		{"trailing dot", "ann.@example.com", "email.invalid_local_part"},
		{"double dot", "an..n@example.com", "email.invalid_local_part"},
		{"quoted local", `"ann"@example.com`, "email.invalid_local_part"},
		{"space inside", "an n@example.com", "email.invalid_local_part"},
		{"display name", "Ann <ann@example.com>", "email.invalid_local_part"},
		{"comment", "ann(comment)@example.com", "email.invalid_local_part"},
		{"unicode local", "jörg@example.com", "email.invalid_local_part"},
		{"no domain", "ann@", "email.invalid_domain"},
		{"single label", "ann@localhost", "email.invalid_domain"},
		{"domain leading dot", "ann@.example.com", "email.invalid_domain"},
		{"domain trailing dot", "ann@example.com.", "email.invalid_domain"},
		{"domain double dot", "ann@example..com", "email.invalid_domain"},
		{"label leading hyphen", "ann@-example.com", "email.invalid_domain"},
		{"label trailing hyphen", "ann@example-.com", "email.invalid_domain"},
		{"label too long", "ann@" + strings.Repeat("b", 64) + ".com", "email.invalid_domain"},
		{"underscore in domain", "ann@ex_ample.com", "email.invalid_domain"},
		{"ip literal", "ann@[192.168.0.1]", "email.invalid_domain"},
		{"dotted ip", "ann@192.168.0.1", "email.invalid_domain"},
		{"IDN in unicode", "ann@bücher.example", "email.invalid_domain"},
		{"cyrillic look-alike", "ann@ехаmple.com", "email.invalid_domain"},
		{"kelvin sign", "ann@\u212Aexample.com", "email.invalid_domain"},
		{"fullwidth at", "ann＠example.com", "email.invalid_format"},
		{"nul byte", "ann\x00@example.com", "email.invalid_local_part"},
		{"newline inside", "ann@exa\nmple.com", "email.invalid_domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := value.NewEmail(tt.in)
			requireRule(t, err, tt.code, "email")
			require.True(t, e.IsZero())
		})
	}
}

func TestEmailText(t *testing.T) {
	e, err := value.NewEmail("Ann@Example.com")
	require.NoError(t, err)
	b, err := e.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "ann@example.com", string(b))

	var got value.Email
	require.NoError(t, got.UnmarshalText(b))
	require.Equal(t, e, got)

	require.NoError(t, got.UnmarshalText(nil))
	require.True(t, got.IsZero())
	requireRule(t, got.UnmarshalText([]byte("nope")), "email.invalid_format", "email")
}
