package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/tracing"
)

// TestRetryAfterCrashGets409ThenSucceedsOnce: a keyed request whose first
// attempt committed and died a moment ago (its reservation fresh, no answer
// stored) is answered 409 request-in-progress with Retry-After while the
// reservation's lease (the request's own deadline) runs, and then once the
// lease is over the retry succeeds with the same aggregate, committed once.
func TestRetryAfterCrashGets409ThenSucceedsOnce(t *testing.T) {
	const timeout = 2 * time.Second
	tp, _, err := tracing.New(context.Background(), tracing.DefaultConfig(), "command-service", "test")
	require.NoError(t, err)
	e := newEnvTraced(t, tp, func(c *Config) { c.Commands.RequestTimeout = timeout })

	key := uuid.NewString()
	body := map[string]any{"name": "Crash Tester", "email": "crash@example.org"}
	id := e.ok(e.do("POST", "/v1/customers", body, "Idempotency-Key", key), 201, 1)
	// The process died between the commit and storing the answer, just now.
	require.NoError(t, e.session.Query(`UPDATE idempotency_keys SET status_code = 0, response_body = null, created_at = ? WHERE idempotency_key = ?`,
		time.Now().UTC(), key).Exec())
	died := time.Now()

	a := e.do("POST", "/v1/customers", body, "Idempotency-Key", key)
	e.problem(a, http.StatusConflict, "request-in-progress", "Idempotency-Key")
	require.Equal(t, "request-in-progress", a.Body["code"])
	after, err := strconv.Atoi(a.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", a.Header.Get("Retry-After"))
	require.True(t, after >= 1 && after <= int(timeout.Seconds())+1, "Retry-After %d within the lease", after)

	var done answer
	require.Eventually(t, func() bool {
		done = e.do("POST", "/v1/customers", body, "Idempotency-Key", key)
		return done.Status != http.StatusConflict
	}, 3*timeout, 50*time.Millisecond, "the retry is let through once the lease is over")
	took := time.Since(died)
	require.Equal(t, id, e.ok(done, 201, 1), "the same customer, committed once")
	require.Less(t, took, timeout+time.Second, "the retry succeeds once the first attempt's deadline has passed")
	t.Logf("retry succeeded %s after the crash (lease %s)", took.Round(time.Millisecond), timeout)
	v, _, err := e.store.Version(context.Background(), gocql.UUID(uuid.MustParse(id)))
	require.NoError(t, err)
	require.EqualValues(t, 1, v)
	replay := e.do("POST", "/v1/customers", body, "Idempotency-Key", key)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, done.Raw, replay.Raw)
}

// TestIdempotencyKeyForm: an empty key is refused (it silently disabled
// idempotency); a key is 1 to 255 visible ASCII characters.
func TestIdempotencyKeyForm(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"name": "Key Tester", "email": "key@example.org"}
	for _, k := range []string{"", "a b", "ключ", string(make([]byte, 256))} {
		req, err := http.NewRequest("POST", e.url+"/v1/customers", strings.NewReader(`{"name":"Key Tester","email":"key@example.org"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = []string{k}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue // the client refused to send it, which is as good
		}
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "key %q", k)
	}
	e.ok(e.do("POST", "/v1/customers", body, "Idempotency-Key", "order-1:~!{}"), 201, 1)
}
