package main

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/servicetest"
)

func TestBinary(t *testing.T) {
	// An API port of the test's own, so that a dlq-service of the local
	// stack on :8083 does not make the binary fail to start.
	servicetest.Contract(t, servicetest.Spec{Kafka: false, Env: []string{"ORDERSTREAM_HTTP_ADDR=" + servicetest.FreeAddr(t)}})
}

// The binary, configured as `make up` and a deployment do (the token from
// the environment), serves the API and the gauges.
func TestBinaryServesTheAPI(t *testing.T) {
	bin := servicetest.Build(t)
	admin, api := servicetest.FreeAddr(t), servicetest.FreeAddr(t)
	p := servicetest.Start(t, bin, servicetest.Env(t, servicetest.Spec{Env: []string{
		"ORDERSTREAM_HTTP_ADDR=" + api, "ORDERSTREAM_DLQ_TOKEN=" + testToken, "ORDERSTREAM_DLQ_STATS_EVERY=100ms",
	}}, admin))
	servicetest.WaitHTTP(t, p, "http://"+admin+"/readyz", http.StatusOK, 60*time.Second)
	servicetest.WaitHTTP(t, p, "http://"+api+"/v1/dlq/stats", http.StatusOK, 5*time.Second)
	servicetest.WaitHTTP(t, p, "http://"+api+"/openapi.json", http.StatusOK, 5*time.Second)

	resp, err := http.Post("http://"+api+"/v1/dlq/retry", "application/json", strings.NewReader(`{"all":true}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	resp, err = http.Get("http://" + admin + "/metrics")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Contains(t, string(raw), "orderstream_dlq_oldest_message_age_seconds")

	require.NoError(t, p.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.Wait(8*time.Second))
}
