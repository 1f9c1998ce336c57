package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/config"
)

func TestServerConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *ServerConfig)
		keys   []string
	}{
		{name: "defaults", modify: func(*ServerConfig) {}},
		{name: "bad addr", modify: func(c *ServerConfig) { c.Addr = "8081" }, keys: []string{"addr"}},
		{name: "zero timeouts", modify: func(c *ServerConfig) {
			c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.DrainTimeout = 0, 0, 0, -time.Second, 0
		}, keys: []string{"read_header_timeout", "read_timeout", "write_timeout", "idle_timeout", "drain_timeout"}},
		{name: "header timeout above read timeout", modify: func(c *ServerConfig) { c.ReadHeaderTimeout = time.Minute }, keys: []string{"read_header_timeout"}},
		{name: "no body", modify: func(c *ServerConfig) { c.MaxBodyBytes = 0 }, keys: []string{"max_body_bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultServerConfig(":8081")
			tc.modify(&c)
			err := c.Validate()
			if len(tc.keys) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var keys []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				fe, ok := errors.AsType[*config.FieldError](e)
				require.True(t, ok, "%v is not a config.FieldError", e)
				keys = append(keys, fe.Key)
			}
			require.Equal(t, tc.keys, keys)
		})
	}
}

// testServer runs a Server on a loopback port until the test cancels it.
type testServer struct {
	srv    *Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, cfg ServerConfig, h http.Handler) *testServer {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	srv := NewServer(cfg, h, zerolog.Nop())
	ln, err := srv.Listen()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts
}

// drain cancels the server's context and waits until it refuses requests.
func (ts *testServer) drain(t *testing.T) {
	t.Helper()
	ts.cancel()
	require.Eventually(t, ts.srv.Draining, 2*time.Second, time.Millisecond)
}

// waitServe returns what Serve returned, failing after within.
func (ts *testServer) waitServe(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("Serve did not return within %s", within)
		return nil
	}
}

// slowHandler serves /slow by waiting for release, /hang by waiting for the
// request context, and anything else at once.
type slowHandler struct {
	started   chan struct{}
	release   chan struct{}
	cancelled chan struct{}
}

func newSlowHandler() *slowHandler {
	return &slowHandler{started: make(chan struct{}, 8), release: make(chan struct{}), cancelled: make(chan struct{}, 8)}
}

func (h *slowHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/slow":
		h.started <- struct{}{}
		<-h.release
		WriteJSON(w, http.StatusOK, map[string]string{"result": "done"})
	case "/hang":
		h.started <- struct{}{}
		<-r.Context().Done()
		h.cancelled <- struct{}{}
	case "/body":
		var v struct {
			Data string `json:"data"`
		}
		if err := DecodeJSON(r, w, 1<<20, &v); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, v)
	default:
		WriteJSON(w, http.StatusOK, map[string]string{"result": "fast"})
	}
}

func waitStarted(t *testing.T, h *slowHandler) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request did not start")
	}
}

type result struct {
	status int
	body   string
	err    error
}

// getAsync sends GET path on a connection of its own.
func getAsync(addr, path string) chan result {
	out := make(chan result, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	return out
}

// rawConn is one keep-alive connection, to send several requests on it.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	_, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: test\r\nX-Correlation-ID: corr-raw\r\n\r\n", path)
	require.NoError(t, err)
	resp, err := http.ReadResponse(rc.r, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, body
}

func TestServerFinishesInFlightRequest(t *testing.T) {
	h := newSlowHandler()
	ts := startServer(t, DefaultServerConfig(""), h)

	slow := getAsync(ts.addr, "/slow")
	waitStarted(t, h)
	ts.drain(t)
	require.Error(t, ts.srv.ReadyCheck(t.Context()), "not ready once draining")

	close(h.release)
	res := <-slow
	require.NoError(t, res.err)
	require.Equal(t, http.StatusOK, res.status)
	require.JSONEq(t, `{"result":"done"}`, res.body)
	require.NoError(t, ts.waitServe(t, 5*time.Second))
}

func TestServerRefusesNewRequestsWhileDraining(t *testing.T) {
	h := newSlowHandler()
	ts := startServer(t, DefaultServerConfig(""), h)
	require.NoError(t, ts.srv.ReadyCheck(t.Context()))

	conn := dial(t, ts.addr)
	resp, _ := conn.get(t, "/fast")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, resp.Close, "the connection is kept alive before the drain")

	slow := getAsync(ts.addr, "/slow")
	waitStarted(t, h)
	ts.drain(t)

	// The same connection, open before the drain, is told to go elsewhere.
	resp, body := conn.get(t, "/fast")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.True(t, resp.Close, "Connection: close")
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Equal(t, "corr-raw", resp.Header.Get(CorrelationIDHeader))
	var p Problem
	require.NoError(t, json.Unmarshal(body, &p))
	require.Equal(t, "shutting-down", p.Slug())
	require.Equal(t, "/fast", p.Instance)
	require.Equal(t, "corr-raw", p.CorrelationID)
	_, err := conn.r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the server closes the connection after the 503")

	// New connections are refused outright.
	_, err = net.DialTimeout("tcp", ts.addr, time.Second)
	require.Error(t, err)

	close(h.release)
	res := <-slow
	require.NoError(t, res.err)
	require.Equal(t, http.StatusOK, res.status)
	require.NoError(t, ts.waitServe(t, 5*time.Second))
}

func TestServerDrainTimeout(t *testing.T) {
	h := newSlowHandler()
	cfg := DefaultServerConfig("")
	cfg.DrainTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg, h)

	hung := getAsync(ts.addr, "/hang")
	waitStarted(t, h)
	start := time.Now()
	ts.cancel()
	err := ts.waitServe(t, 5*time.Second)
	elapsed := time.Since(start)

	require.Error(t, err)
	require.Contains(t, err.Error(), "1 requests still in flight")
	require.GreaterOrEqual(t, elapsed, cfg.DrainTimeout)
	require.Less(t, elapsed, cfg.DrainTimeout+time.Second, "Serve returns at the drain deadline")

	// Closing the connection cancels the hung request's context.
	select {
	case <-h.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the hung request's context was not cancelled")
	}
	res := <-hung
	require.Error(t, res.err, "the client sees the connection cut")
}

func TestServerIdleDrainIsImmediate(t *testing.T) {
	ts := startServer(t, DefaultServerConfig(""), newSlowHandler())
	conn := dial(t, ts.addr)
	resp, _ := conn.get(t, "/fast")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	ts.cancel()
	require.NoError(t, ts.waitServe(t, 2*time.Second), "nothing in flight: idle connections are closed and Serve returns")
	_, err := conn.r.ReadByte()
	require.ErrorIs(t, err, io.EOF)
}

func TestServerCapsBody(t *testing.T) {
	cfg := DefaultServerConfig("")
	cfg.MaxBodyBytes = 16
	ts := startServer(t, cfg, newSlowHandler())

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	post := func(body string) int {
		resp, err := client.Post("http://"+ts.addr+"/body", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post(`{"data":"abcde"}`))                     // 16 bytes
	require.Equal(t, http.StatusRequestEntityTooLarge, post(`{"data":"abcdef"}`)) // 17 bytes, under DecodeJSON's own limit
}

func TestServerListenPortInUse(t *testing.T) {
	ts := startServer(t, DefaultServerConfig(""), newSlowHandler())
	_, err := NewServer(DefaultServerConfig(ts.addr), http.NotFoundHandler(), zerolog.Nop()).Listen()
	require.Error(t, err)
	require.Contains(t, err.Error(), ts.addr)
}
