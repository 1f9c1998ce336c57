package httpload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderstream/orderstream/pkg/backoff"
)

// problemTypeBase prefixes the type of every orderstream problem answer.
const problemTypeBase = "https://orderstream.dev/problems/"

// newTransport is the one Transport every client shares: enough idle
// connections per host that no client waits for another's, and no proxy,
// since the load goes to the services directly.
func newTransport(clients int) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4*clients + 16,
		MaxIdleConnsPerHost:   2*clients + 8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// answer is what one request came back with.
type answer struct {
	status int // 0: no answer (transport error)
	body   []byte
	err    error // the last transport error, when status is 0
	// retryAfter is the server's Retry-After, if it sent one.
	retryAfter time.Duration
	// attempts is how many times the request was sent.
	attempts int
}

// accepted is a command's 2xx answer.
type accepted struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// problem is the part of a problem answer the load looks at.
type problem struct {
	Type           string `json:"type"`
	Code           string `json:"code"`
	CurrentVersion *int64 `json:"current_version"`
}

func (a answer) problem() problem {
	var p problem
	_ = json.Unmarshal(a.body, &p)
	return p
}

// slug is the problem's type without its base, "" for none.
func (a answer) slug() string {
	s, _ := strings.CutPrefix(a.problem().Type, problemTypeBase)
	return s
}

// sender sends requests, retrying what a retry can fix.
type sender struct {
	http       *http.Client
	retries    int
	backoff    time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	rng        *rand.Rand // jitter; one per client, not shared
}

// retryable tells whether a retry with the same Idempotency-Key may get
// another answer: a transport error, any 5xx (command-service does not
// keep a 5xx answer, so the retry runs again and finds the commit if the
// failed attempt made one), or 409 request-in-progress (the key is still
// held by an attempt the client gave up on, or by one a crash cut off
// until its lease ends).
func retryable(a answer) bool {
	return a.status == 0 || a.status >= 500 ||
		(a.status == http.StatusConflict && a.slug() == "request-in-progress")
}

// do sends method url with body and headers, retrying with the same
// headers (so the same Idempotency-Key) while the answer is retryable and
// retries are left. It gives up early only when ctx ends.
func (s *sender) do(ctx context.Context, method, url string, body []byte, header http.Header) answer {
	policy := backoff.Policy{Initial: s.backoff, Max: s.maxBackoff}
	for attempts := 1; ; attempts++ {
		a := s.once(ctx, method, url, body, header)
		a.attempts = attempts
		if !retryable(a) || attempts > s.retries || ctx.Err() != nil {
			return a
		}
		// Jitter, so that clients that failed together do not retry
		// together; added, never taken off, so that the retries last at
		// least as long as the backoff promises, and drawn from the
		// load's seeded source, so that a run can be repeated.
		wait := policy.Nominal(attempts)
		pause := wait + time.Duration(s.rng.Int64N(int64(wait/2)+1))
		if a.retryAfter > pause {
			pause = min(a.retryAfter, s.maxBackoff)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return a
		case <-t.C:
		}
	}
}

// once sends one attempt, bounded by the attempt timeout.
func (s *sender) once(ctx context.Context, method, url string, body []byte, header http.Header) answer {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{err: err}
	}
	req.Header = header.Clone()
	resp, err := s.http.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		// The status arrived but not the whole body: as good as a
		// dropped connection.
		return answer{err: err}
	}
	a := answer{status: resp.StatusCode, body: b}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		a.retryAfter = time.Duration(secs) * time.Second
	}
	return a
}

// isCancelled tells whether err comes from the caller's context ending
// rather than from the server.
func isCancelled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
