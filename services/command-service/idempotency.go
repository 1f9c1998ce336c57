package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

	"github.com/orderstream/orderstream/pkg/httpapi"
)

// Idempotency-Key handling. A key is reserved by LWT before the command
// runs, so that two copies of one request never both commit; the answer is
// stored with the key for 24 hours (the table's TTL) and replayed to every
// retry that sends the same key and body.
//
// The command id (each event's causation id) is derived from the key, so a
// retry whose first attempt died between commit and answer can find that
// commit in the aggregate's stream and answer with it (execute checks this
// when commandInfo.retried is set).

// keyNamespace derives command ids from idempotency keys (UUID v5).
var keyNamespace = uuid.MustParse("6f0e2f62-4b61-4f0c-9a55-6a4c4f1a8f33")

type idempotency struct {
	session *gocql.Session
	ttl     time.Duration
	// lease is how long a reservation stays with the request that took
	// it: the request's own deadline, past which it cannot be running; after
	// that a retry may take it over (its first attempt died).
	lease   time.Duration
	maxBody int64
}

type commandInfo struct {
	id      string
	retried bool
}

type commandKey struct{}

func commandOf(ctx context.Context) commandInfo {
	c, _ := ctx.Value(commandKey{}).(commandInfo)
	return c
}

// replayedHeaders are the response headers stored with an answer.
var replayedHeaders = []string{"Content-Type", "ETag", "Location"}

func (i *idempotency) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values, sent := r.Header["Idempotency-Key"]
		if !sent {
			next.ServeHTTP(w, r)
			return
		}
		// An empty key must not quietly run the request unprotected, and
		// two keys cannot both name it.
		key := ""
		if len(values) == 1 {
			key = values[0]
		}
		if key == "" || len(key) > 255 || !visible(key) {
			httpapi.WriteError(w, r, badHeader("Idempotency-Key", "Idempotency-Key must be one value of 1 to 255 visible ASCII characters (no spaces)"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, i.maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				httpapi.WriteError(w, r, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large",
					fmt.Sprintf("the request body is larger than %d bytes", i.maxBody)))
				return
			}
			httpapi.WriteError(w, r, httpapi.NewProblem(http.StatusBadRequest, "unreadable-body", "Unreadable body", "the request body could not be read"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		hash := hex.EncodeToString(sum[:])

		info, replay, err := i.reserve(r.Context(), key, hash)
		if err != nil {
			if ip, ok := errors.AsType[*inProgressError](err); ok {
				w.Header().Set("Retry-After", ip.retryAfter())
			}
			p, _ := problemFor(err)
			httpapi.WriteProblem(w, r, p)
			return
		}
		if replay != nil {
			replay.writeTo(w)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), commandKey{}, info)))
		i.finish(key, rec)
	})
}

type storedAnswer struct {
	status  int
	body    []byte
	headers map[string]string
}

func (s *storedAnswer) writeTo(w http.ResponseWriter) {
	for k, v := range s.headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(s.status)
	_, _ = w.Write(s.body)
}

// reserve takes the key for this request, or returns the stored answer to
// replay, or a problem: the key was used for another request (422) or its
// first request is still running (409).
func (i *idempotency) reserve(ctx context.Context, key, hash string) (commandInfo, *storedAnswer, error) {
	info := commandInfo{id: uuid.NewSHA1(keyNamespace, []byte(key)).String()}
	now := time.Now().UTC()
	existing := map[string]any{}
	applied, err := i.session.Query(
		`INSERT INTO idempotency_keys (idempotency_key, request_hash, status_code, created_at) VALUES (?, ?, 0, ?) IF NOT EXISTS USING TTL ?`,
		key, hash, now, int(i.ttl.Seconds())).WithContext(ctx).MapScanCAS(existing)
	if err != nil {
		return info, nil, fmt.Errorf("reserving idempotency key: %w", err)
	}
	if applied {
		return info, nil, nil
	}
	if h, _ := existing["request_hash"].(string); h != hash {
		p := httpapi.NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
			"this Idempotency-Key was sent before with a different request; use a new key for a new request")
		p.Problem.Field = "Idempotency-Key"
		return info, nil, p
	}
	if status, _ := existing["status_code"].(int); status > 0 {
		body, _ := existing["response_body"].(string)
		headers, _ := existing["response_headers"].(map[string]string)
		return info, &storedAnswer{status: status, body: []byte(body), headers: headers}, nil
	}
	reservedAt, _ := existing["created_at"].(time.Time)
	if left := reservedAt.Add(i.lease).Sub(now); left > 0 {
		return info, nil, inProgress(left)
	}
	// The first attempt died without answering: take the reservation over.
	applied, err = i.session.Query(
		`UPDATE idempotency_keys USING TTL ? SET created_at = ? WHERE idempotency_key = ? IF created_at = ?`,
		int(i.ttl.Seconds()), now, key, reservedAt).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return info, nil, fmt.Errorf("taking over idempotency key: %w", err)
	}
	if !applied {
		// Another retry took it over first and now runs with its deadline.
		return info, nil, inProgress(i.lease)
	}
	info.retried = true
	return info, nil, nil
}

// finish stores the answer. A 5xx answer is not stored: the reservation is
// released at once for takeover, so that the client's retry runs again
// (and finds the commit, if the failed attempt made one after all).
func (i *idempotency) finish(key string, rec *recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rec.status >= 500 {
		_ = i.session.Query(`UPDATE idempotency_keys USING TTL ? SET created_at = ? WHERE idempotency_key = ?`,
			int(i.ttl.Seconds()), time.Unix(0, 0).UTC(), key).WithContext(ctx).Exec()
		return
	}
	headers := map[string]string{}
	for _, h := range replayedHeaders {
		if v := rec.Header().Get(h); v != "" {
			headers[h] = v
		}
	}
	// If this write fails the reservation expires after the lease and a
	// retry takes it over and finds the commit; nothing is committed twice.
	_ = i.session.Query(`UPDATE idempotency_keys USING TTL ? SET status_code = ?, response_body = ?, response_headers = ? WHERE idempotency_key = ?`,
		int(i.ttl.Seconds()), rec.status, rec.body.String(), headers, key).WithContext(ctx).Exec()
}

// recorder passes the answer through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// inProgressError is the 409 for a key whose request is still within its
// deadline; the answer asks the client to retry after what is left of it.
type inProgressError struct{ left time.Duration }

func inProgress(left time.Duration) *inProgressError { return &inProgressError{left: left} }

func (e *inProgressError) Error() string {
	return "a request with this Idempotency-Key is in progress for " + e.left.String()
}

// retryAfter is what is left of the lease in whole seconds, at least 1.
func (e *inProgressError) retryAfter() string {
	return strconv.FormatInt(max(1, int64((e.left+time.Second-1)/time.Second)), 10)
}

// deadline gives every command request its deadline, the lease of its
// Idempotency-Key: a request cannot hold a key past the moment a retry
// may take it over.
func deadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// visible tells whether s is visible ASCII only (%x21-7E).
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
