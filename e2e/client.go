package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// Client calls the system's HTTP APIs for a test.
type Client struct {
	t    testing.TB
	http *http.Client
}

// NewClient returns a client for t.
func NewClient(t testing.TB) *Client {
	return &Client{t: t, http: &http.Client{Timeout: 30 * time.Second}}
}

// Answer is a response: its status, headers and body.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (a Answer) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.Body, &m), "body: %s", a.Body)
	return m
}

// Do sends a request with an Idempotency-Key on every mutating method;
// body is encoded as JSON unless it is already []byte or string.
func (c *Client) Do(method, url string, body any, header ...string) Answer {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		enc, err := json.Marshal(b)
		require.NoError(c.t, err)
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Command sends a command that must be accepted and returns its id and
// the version it produced.
func (c *Client) Command(method, url string, body any) (string, int64) {
	c.t.Helper()
	a := c.Do(method, url, body)
	require.Contains(c.t, []int{http.StatusOK, http.StatusCreated}, a.Status, "%s %s: %s", method, url, a.Body)
	m := a.JSON(c.t)
	return m["id"].(string), int64(m["version"].(float64))
}
