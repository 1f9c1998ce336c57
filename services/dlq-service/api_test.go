package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace/noop"
)

// A handler without a database: requests refused before any read or write
// never reach it.
func offlineServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	a, err := newAPI(nil, nil, testConfig().DLQ, token, zerolog.Nop(), prometheus.NewRegistry())
	require.NoError(t, err)
	h, err := newHandler(a, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider())
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// Every mutating route refuses a request without the right bearer token,
// before it reads anything: 401 without one (with WWW-Authenticate), 403
// with a wrong one or when no token is configured.
func TestMutationsNeedTheToken(t *testing.T) {
	const id = "7b3f0e1a-5a0c-11f0-8000-0242ac120002"
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/dlq/" + id + "/retry"},
		{http.MethodPost, "/v1/dlq/retry"},
		{http.MethodDelete, "/v1/dlq/" + id + "?skip=true"},
		{http.MethodDelete, "/v1/dlq?all=true"},
	}
	cases := []struct {
		name   string
		token  string // configured
		header string // sent
		status int
	}{
		{"no header", testToken, "", http.StatusUnauthorized},
		{"not bearer", testToken, "Basic " + testToken, http.StatusUnauthorized},
		{"empty bearer", testToken, "Bearer ", http.StatusUnauthorized},
		{"wrong token", testToken, "Bearer " + testToken + "x", http.StatusForbidden},
		{"prefix of the token", testToken, "Bearer " + testToken[:10], http.StatusForbidden},
		{"none configured", "", "Bearer " + testToken, http.StatusForbidden},
	}
	for _, tc := range cases {
		srv := offlineServer(t, tc.token)
		for _, rt := range routes {
			t.Run(tc.name+" "+rt.method+" "+rt.path, func(t *testing.T) {
				req, err := http.NewRequest(rt.method, srv.URL+rt.path, strings.NewReader(`{"all":true}`))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				require.Equal(t, tc.status, resp.StatusCode)
				require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
				if tc.status == http.StatusUnauthorized {
					require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
				}
			})
		}
	}
}

func TestParseList(t *testing.T) {
	tok := encodePageToken([16]byte{0, 0, 0, 0, 0, 0, 0x11, 0, 0x80})
	for _, tc := range []struct {
		raw   string
		field string // "" when valid
	}{
		{"", ""},
		{"component=relay&event_type=OrderShipped&aggregate_id=0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11&since=2025-01-01T00:00:00Z&until=2025-01-02T00:00:00Z&limit=10", ""},
		{"page_token=" + tok, ""},
		{"component=", "component"},
		{"component=" + strings.Repeat("x", 201), "component"},
		{"event_type=%00", "event_type"},
		{"aggregate_id=nope", "aggregate_id"},
		{"since=yesterday", "since"},
		{"since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", "until"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"page_token=", "page_token"},
		{"page_token=AAAA", "page_token"},
		{"page_token=" + encodePageToken([16]byte{0, 0, 0, 0, 0, 0, 0x41}), "page_token"}, // a version-4 UUID
		{"skip=true", "skip"},
		{"component=a&component=b", "component"},
		{"%zz", "query"},
	} {
		_, err := parseList(tc.raw)
		if tc.field == "" {
			require.NoError(t, err, tc.raw)
			continue
		}
		require.Error(t, err, tc.raw)
		require.Contains(t, err.Error(), "(field "+tc.field+")", tc.raw)
	}
}

func TestParsePurge(t *testing.T) {
	_, err := parsePurge("")
	require.ErrorContains(t, err, "(field all)")
	_, err = parsePurge("all=true&component=relay")
	require.ErrorContains(t, err, "(field all)")
	p, err := parsePurge("all=true")
	require.NoError(t, err)
	require.False(t, p.skip)
	p, err = parsePurge("event_type=OrderShipped&skip=true")
	require.NoError(t, err)
	require.True(t, p.skip)
	require.Equal(t, "OrderShipped", p.filter.EventType)
	_, err = parsePurge("event_type=OrderShipped&skip=yes")
	require.ErrorContains(t, err, "(field skip)")
	_, err = parseSkip("limit=3")
	require.ErrorContains(t, err, "(field limit)")
}

func TestParseEntryID(t *testing.T) {
	_, err := parseEntryID("7b3f0e1a-5a0c-11f0-8000-0242ac120002")
	require.NoError(t, err)
	for _, bad := range []string{"", "x", "0b9f9f0e-7c55-4a4f-9d4c-2a0f3f1d2c11", "00000000-0000-0000-0000-000000000000", "7b3f0e1a5a0c11f080000242ac120002"} {
		_, err := parseEntryID(bad)
		require.Error(t, err, bad)
	}
}

func TestConfig(t *testing.T) {
	require.NoError(t, defaultConfig().Validate())
	for _, tc := range []struct {
		key  string
		tune func(*Config)
	}{
		{"dlq.token", func(c *Config) { c.DLQ.Token = "short" }},
		{"dlq.token_file", func(c *Config) { c.DLQ.Token, c.DLQ.TokenFile = testToken, "/x" }},
		{"dlq.retry_timeout", func(c *Config) { c.DLQ.RetryTimeout = c.HTTP.WriteTimeout }},
		{"dlq.bulk_timeout", func(c *Config) { c.DLQ.BulkTimeout = 0 }},
		{"dlq.bulk_rate", func(c *Config) { c.DLQ.BulkRate = 0 }},
		{"dlq.bulk_max", func(c *Config) { c.DLQ.BulkMax = 0 }},
		{"dlq.poll_every", func(c *Config) { c.DLQ.PollEvery = time.Hour }},
	} {
		c := defaultConfig()
		tc.tune(c)
		require.ErrorContains(t, c.Validate(), `"`+tc.key+`"`)
	}

	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(testToken+"\n"), 0o600))
	token, err := loadToken(DLQConfig{TokenFile: file})
	require.NoError(t, err)
	require.Equal(t, testToken, token)
	_, err = loadToken(DLQConfig{TokenFile: filepath.Join(t.TempDir(), "missing")})
	require.ErrorContains(t, err, "dlq.token_file")
	require.NoError(t, os.WriteFile(file, []byte("short"), 0o600))
	_, err = loadToken(DLQConfig{TokenFile: file})
	require.ErrorContains(t, err, "dlq.token_file")
}
