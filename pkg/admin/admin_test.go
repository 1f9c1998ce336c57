package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
