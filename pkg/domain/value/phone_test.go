package value_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestNewPhoneNumberAccepts(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"+442079460958", "+442079460958"},
		{"+44 20 7946 0958", "+442079460958"},
		{"+1 (555) 123-4567", "+15551234567"},
		{"+49.30.1234.5678", "+493012345678"},
		{"  +81-3-1234-5678\t", "+81312345678"},
		{"(+44) 20 7946 0958", "+442079460958"},
		{"+12345678", "+12345678"},               // 8 digits, the shortest
		{"+123456789012345", "+123456789012345"}, // 15 digits, the longest
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := value.NewPhoneNumber(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, p.String())
			require.False(t, p.IsZero())
		})
	}
}

func TestNewPhoneNumberRejects(t *testing.T) {
	tests := []struct {
		name, in, code string
	}{
		{"empty", "", "phone.required"},
		{"blank", "   ", "phone.required"},
		{"no plus", "442079460958", "phone.invalid_format"},
		{"double zero prefix", "00442079460958", "phone.invalid_format"},
		{"plus later", "44+2079460958", "phone.invalid_format"},
		{"two plus", "++442079460958", "phone.invalid_format"},
		{"letters", "+44 20 7946 ABCD", "phone.invalid_format"},
		{"extension", "+44 20 7946 0958 x12", "phone.invalid_format"},
		{"slash", "+44/2079460958", "phone.invalid_format"},
		{"arabic-indic digits", "+٤٤٢٠٧٩٤٦٠٩٥٨", "phone.invalid_format"},
		{"fullwidth digits", "+４４２０７９４６０９５８", "phone.invalid_format"},
		{"tab inside", "+44\t2079460958", "phone.invalid_format"},
		{"only plus", "+", "phone.invalid_length"},
		{"7 digits", "+1234567", "phone.invalid_length"},
		{"16 digits", "+1234567890123456", "phone.invalid_length"},
		{"leading zero", "+0442079460958", "phone.invalid_format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := value.NewPhoneNumber(tt.in)
			requireRule(t, err, tt.code, "phone")
			require.True(t, p.IsZero())
		})
	}
}

func TestPhoneNumberText(t *testing.T) {
	p, err := value.NewPhoneNumber("+44 20 7946 0958")
	require.NoError(t, err)
	b, err := p.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "+442079460958", string(b))
	var got value.PhoneNumber
	require.NoError(t, got.UnmarshalText(b))
	require.Equal(t, p, got)
	require.NoError(t, got.UnmarshalText([]byte{}))
	require.True(t, got.IsZero(), "empty text is an absent phone")
	requireRule(t, got.UnmarshalText([]byte("123")), "phone.invalid_format", "phone")
}
