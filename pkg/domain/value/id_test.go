package value_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain/value"
)

func TestIsUUID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", true},
		{"0190f0a8-3c1b-7cc2-9d6e-5a4f3b2c1d0e", true},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
		{"00000000-0000-0000-0000-000000000000", false},
		{"6BA7B810-9DAD-11D1-80B4-00C04FD430C8", false},
		{"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", false},
		{"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8", false},
		{"6ba7b8109dad11d180b400c04fd430c8", false},
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c", false},
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c8a", false},
		{"6ba7b810-9dad-11d1-80b4_00c04fd430c8", false},
		{"6ba7b810-9dad-11d1-80b4-00c04fd430cg", false},
		{" 6ba7b810-9dad-11d1-80b4-00c04fd430c8", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.Equal(t, tt.want, value.IsUUID(tt.in))
		})
	}
}

func TestIsUUIDAcceptsWhatUUIDLibrariesWrite(t *testing.T) {
	for i := 0; i < 100; i++ {
		require.True(t, value.IsUUID(uuid.NewString()))
		require.True(t, value.IsUUID(uuid.Must(uuid.NewV7()).String()))
	}
}
