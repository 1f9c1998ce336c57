package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
)

func TestReadyzReportsEveryCheck(t *testing.T) {
	srv := admin.New(admin.DefaultConfig("127.0.0.1:0"), zerolog.Nop(), prometheus.NewRegistry())
	ln, err := srv.Listen()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	base := "http://" + ln.Addr().String()

	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}

	code, _ := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body := get("/readyz")
	require.Equal(t, http.StatusOK, code, "no checks: ready")
	require.Equal(t, "ready", body["status"])

	failing := errors.New("broker unreachable")
	srv.AddCheck("cql", func(context.Context) error { return nil })
	srv.AddCheck("kafka", func(context.Context) error { return failing })
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, map[string]any{"cql": "ok", "kafka": "broker unreachable"}, body["checks"])

	srv.AddCheck("kafka", func(context.Context) error { return nil })
	code, _ = get("/readyz")
	require.Equal(t, http.StatusOK, code)
}

func TestCheckDeadline(t *testing.T) {
	cfg := admin.DefaultConfig("127.0.0.1:0")
	cfg.CheckTimeout = 50 * time.Millisecond
	srv := admin.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
	srv.AddCheck("slow", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	start := time.Now()
	failures := srv.Ready(context.Background())
	require.ErrorIs(t, failures["slow"], context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, admin.DefaultConfig(":9081").Validate())
	require.ErrorContains(t, admin.DefaultConfig("9081").Validate(), `"addr"`)
	c := admin.DefaultConfig(":9081")
	c.CheckTimeout = 0
	require.ErrorContains(t, c.Validate(), `"check_timeout"`)
}

// serve runs srv on a free port and returns its base URL.
func serve(t *testing.T, srv *admin.Server) string {
	t.Helper()
	ln, err := srv.Listen()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return "http://" + ln.Addr().String()
}

// call sends method to url with the bearer token (none when empty) and
// returns the status and the problem's code.
func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Code string `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Code
}

// Mutating admin endpoints need the bearer token: 401 without one, 403
// with a wrong one, and 403 always when no token is configured; GET
// endpoints need none.
func TestMutatingEndpointsNeedTheToken(t *testing.T) {
	const token = "0123456789abcdef-admin"
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }
	for _, tc := range []struct {
		name, configured, sent string
		want                   int
		code                   string
	}{
		{"no header", token, "", http.StatusUnauthorized, "admin.unauthorized"},
		{"wrong token", token, "wrong-token-of-some-length", http.StatusForbidden, "admin.forbidden"},
		{"right token", token, token, http.StatusAccepted, ""},
		{"none configured", "", token, http.StatusForbidden, "admin.forbidden"},
		{"none configured, none sent", "", "", http.StatusUnauthorized, "admin.unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := admin.DefaultConfig("127.0.0.1:0")
			cfg.Token = tc.configured
			srv := admin.New(cfg, zerolog.Nop(), prometheus.NewRegistry())
			srv.Handle(http.MethodPost, "/rebuild", ok)
			srv.Handle(http.MethodDelete, "/rebuild", ok)
			srv.Handle(http.MethodGet, "/rebuild", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
			base := serve(t, srv)
			for _, method := range []string{http.MethodPost, http.MethodDelete} {
				code, problem := call(t, method, base+"/rebuild", tc.sent)
				require.Equal(t, tc.want, code, method)
				require.Equal(t, tc.code, problem, method)
			}
			code, _ := call(t, http.MethodGet, base+"/rebuild", "")
			require.Equal(t, http.StatusOK, code, "GET needs no token")
		})
	}
}

func TestTokenConfig(t *testing.T) {
	c := admin.DefaultConfig(":9081")
	c.Token = "short"
	require.ErrorContains(t, c.Validate(), `"token"`)
	c.Token = "long-enough-token-1234"
	require.NoError(t, c.Validate())
	c.TokenFile = "/nonexistent"
	require.ErrorContains(t, c.Validate(), `"token_file"`)
	c.Token = ""
	require.ErrorContains(t, c.Validate(), "cannot read it")
	file := t.TempDir() + "/token"
	require.NoError(t, os.WriteFile(file, []byte("from-a-file-0123456789\n"), 0o600))
	c.TokenFile = file
	require.NoError(t, c.Validate())
	c.Addr = "127.0.0.1:0"
	srv := admin.New(c, zerolog.Nop(), prometheus.NewRegistry())
	require.True(t, srv.HasToken())
	srv.Handle(http.MethodPost, "/x", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	base := serve(t, srv)
	code, _ := call(t, http.MethodPost, base+"/x", "from-a-file-0123456789")
	require.Equal(t, http.StatusNoContent, code, "the file's token, trimmed")
}

// With admin.pprof the runtime's profiles are served behind the token (a
// GET too); without it there are none; and it cannot be set without a
// token.
func TestProfilesNeedPprofAndTheToken(t *testing.T) {
	const token = "0123456789abcdef-admin"
	cfg := admin.DefaultConfig("127.0.0.1:0")
	cfg.Pprof = true
	require.ErrorContains(t, cfg.Validate(), `"pprof"`)
	cfg.Token = token
	require.NoError(t, cfg.Validate())

	base := serve(t, admin.New(cfg, zerolog.Nop(), prometheus.NewRegistry()))
	code, problem := call(t, http.MethodGet, base+"/debug/pprof/goroutine?debug=1", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, "admin.unauthorized", problem)
	code, _ = call(t, http.MethodGet, base+"/debug/pprof/goroutine?debug=1", "wrong-token-of-some-length")
	require.Equal(t, http.StatusForbidden, code)
	req, err := http.NewRequest(http.MethodGet, base+"/debug/pprof/heap", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, body, "a heap profile")

	cfg.Pprof = false
	base = serve(t, admin.New(cfg, zerolog.Nop(), prometheus.NewRegistry()))
	code, _ = call(t, http.MethodGet, base+"/debug/pprof/heap", token)
	require.Equal(t, http.StatusNotFound, code, "no profiles without admin.pprof")
}
