package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParamsAsDocumented: what openapi.json allows the parser takes, what
// it refuses the parser refuses. A time filter is any RFC 3339 date-time
// (outside the years a dead letter can have it selects as far as there are
// any; until before since is refused, as the document says); a component or
// event type is 1 to 200 characters without control characters; a page
// token is 22 base64url characters of a version-1 UUID.
func TestParamsAsDocumented(t *testing.T) {
	accept := []string{
		"since=1900-01-01T00:00:00Z",
		"since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59.999999999Z",
		"until=6000-01-01T00:00:00%2B14:00",
		"since=2025-01-01t00:00:00z",
		"since=2016-12-31T23:59:60Z",
		"component=" + strings.Repeat("é", 200),
		"event_type=Order%20Shipped%E2%80%8B",
		"page_token=AAAAAAAAEAAAAAAAAAAAAA",
		"page_token=________H____________w",
	}
	for _, raw := range accept {
		_, err := parseList(raw)
		require.NoError(t, err, raw)
	}
	refuse := map[string]string{
		"component=" + strings.Repeat("é", 201): "component",
		"component=a%0Ab":                       "component",
		"event_type=%E2%80%AE":                  "event_type",
		"event_type=%EF%BB%BF":                  "event_type",
		"since=2025-01-01":                      "since",
		"since=2025-01-01T00:00:00":             "since",
		"page_token=AAAAAAAAQAAAAAAAAAAAAA":     "page_token",
		"page_token=AAAAAAAAEAAAAAAAAAAAAAA":    "page_token",
		"page_token=AAAAAAAAEAAAAAAAAAAAA=":     "page_token",
	}
	for raw, field := range refuse {
		_, err := parseList(raw)
		require.Error(t, err, raw)
		require.Contains(t, err.Error(), "(field "+field+")", raw)
	}
	p, err := parseList("since=1900-01-01T00:00:00Z&until=9999-01-01T00:00:00Z")
	require.NoError(t, err)
	require.False(t, p.filter.Since.After(time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)), "since before the first dead letter selects from the first")
	require.True(t, p.filter.Until.After(time.Date(4000, 1, 1, 0, 0, 0, 0, time.UTC)))
}
