package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The section replaces the previous one and keeps what is around it.
func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	section := func(s string) string { return beginMarker + "\n" + s + "\n" + endMarker + "\n" }

	require.NoError(t, replaceSection(path, section("first")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\nFigures written by the bench commands; each writes its own section.\n\n"+section("first"), string(got))

	others := "# Benchmarks\n\n## Store\n\nfigures\n\n" + section("old") + "\n## Relay\n\nmore\n"
	require.NoError(t, os.WriteFile(path, []byte(others), 0o644))
	require.NoError(t, replaceSection(path, section("new")))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n## Store\n\nfigures\n\n"+section("new")+"\n## Relay\n\nmore\n", string(got))

	require.NoError(t, os.WriteFile(path, []byte("# Benchmarks\n\n## Store\n"), 0o644))
	require.NoError(t, replaceSection(path, section("appended")))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n## Store\n\n"+section("appended"), string(got))
}

func TestShares(t *testing.T) {
	samples := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 3 * time.Second}
	require.Equal(t, []float64{50, 50, 75, 75, 75, 75, 75, 75, 100}, shares(samples))
	require.Equal(t, make([]float64, len(buckets)), shares(nil))
}

func TestParseClients(t *testing.T) {
	got, err := parseClients("1, 16,64")
	require.NoError(t, err)
	require.Equal(t, []int{1, 16, 64}, got)
	for _, bad := range []string{"", "0", "1,x", "-4"} {
		_, err := parseClients(bad)
		require.Error(t, err, bad)
	}
}
