package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// CorrelationIDHeader carries the correlation id in requests and responses.
const CorrelationIDHeader = "X-Correlation-ID"

// maxCorrelationIDLen bounds a caller's id: it is stored on every event and
// logged on every line, so a client must not make it arbitrarily large.
const maxCorrelationIDLen = 128

type correlationKey struct{}

// CorrelationID takes the caller's X-Correlation-ID, or generates a UUID v4
// when it is absent or invalid (empty, longer than 128 bytes, or holding
// anything but printable ASCII without spaces), stores it in the request
// context and echoes it in the response header.
func CorrelationID() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(CorrelationIDHeader)
			if !validCorrelationID(id) {
				id = uuid.NewString()
			}
			w.Header().Set(CorrelationIDHeader, id)
			next.ServeHTTP(w, r.WithContext(WithCorrelationID(r.Context(), id)))
		})
	}
}

func validCorrelationID(id string) bool {
	if id == "" || len(id) > maxCorrelationIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// WithCorrelationID returns ctx carrying id, for work that starts outside an
// HTTP request (tests, background jobs) but calls code that reads it.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationIDFrom returns the correlation id in ctx, or "".
func CorrelationIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// Recoverer answers a panicking handler with a 500 problem that shows
// nothing of the panic, and logs the panic with its stack. A panic with
// http.ErrAbortHandler is passed on, since it asks net/http to cut the
// connection. So is any panic after the response has started: a problem
// cannot be written any more, and cutting the connection tells the client
// the answer is incomplete instead of letting it look whole.
func Recoverer(logger zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := wrapWriter(w)
			// The headers as they were before the handler ran: a panicking
			// handler may have set ETag or Location for an answer it never
			// gave, which must not ride on the 500.
			before := w.Header().Clone()
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.Error().
					Str("panic", fmt.Sprint(p)).
					Str("stack", string(debug.Stack())).
					Str("method", r.Method).
					Str("path", r.URL.Path).
					Str("correlation_id", CorrelationIDFrom(r.Context())).
					Bool("response_started", rec.wroteHeader).
					Msg("http handler panicked")
				if rec.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				h := rec.Header()
				clear(h)
				for k, v := range before {
					h[k] = v
				}
				WriteProblem(rec, r, internalProblem())
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

type logFieldsKey struct{}

// logFields collects the fields handlers add to the access log line. Handlers
// may add from goroutines of their own, hence the lock.
type logFields struct {
	mu  sync.Mutex
	fns []func(e *zerolog.Event)
}

// AddLogFields adds fields to the access log line of the request whose
// context is ctx (command, aggregate_id, outcome, ...). Without AccessLog in
// the chain it does nothing.
func AddLogFields(ctx context.Context, f func(e *zerolog.Event)) {
	lf, ok := ctx.Value(logFieldsKey{}).(*logFields)
	if !ok || f == nil {
		return
	}
	lf.mu.Lock()
	lf.fns = append(lf.fns, f)
	lf.mu.Unlock()
}

// AccessLog writes one line per request when it completes: method, route
// (the chi pattern, so that lines group by endpoint), path, status,
// duration_ms, bytes, correlation_id, trace_id when there is a span, and the
// fields handlers added with AddLogFields. 5xx answers log at error level,
// the rest at info.
func AccessLog(logger zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := wrapWriter(w)
			lf := &logFields{}
			r = r.WithContext(context.WithValue(r.Context(), logFieldsKey{}, lf))
			completed := false
			// Deferred, not after ServeHTTP, so that a panicking request is
			// logged too; it does not recover, so the panic reaches
			// Recoverer with its original stack.
			defer func() {
				status := rec.statusFor(completed)
				ev := logger.Info()
				if status >= 500 {
					ev = logger.Error()
				}
				ev = ev.Str("method", r.Method).
					Str("route", routeLabel(r)).
					Str("path", r.URL.Path).
					Int("status", status).
					Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).
					Int64("bytes", rec.bytes).
					Str("correlation_id", CorrelationIDFrom(r.Context()))
				if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
					ev = ev.Str("trace_id", sc.TraceID().String())
				}
				if !completed {
					ev = ev.Bool("panicked", true)
				}
				lf.mu.Lock()
				for _, f := range lf.fns {
					f(ev)
				}
				lf.mu.Unlock()
				ev.Msg("http request")
			}()
			next.ServeHTTP(rec, r)
			completed = true
		})
	}
}

// routeUnmatched labels requests no route matched, so that scans of random
// paths do not each become a label value.
const routeUnmatched = "unmatched"

// routeLabel is the chi route pattern that served r, read after routing.
func routeLabel(r *http.Request) string {
	if p := chi.RouteContext(r.Context()).RoutePattern(); p != "" {
		return p
	}
	return routeUnmatched
}

// methodLabel keeps label and span-name cardinality bounded: a client can
// send any token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// responseRecorder notes the status and size of a response. Middleware
// reuses one it finds directly below, so a chain of them wraps the writer
// once.
type responseRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func wrapWriter(w http.ResponseWriter) *responseRecorder {
	if rec, ok := w.(*responseRecorder); ok {
		return rec
	}
	return &responseRecorder{ResponseWriter: w}
}

func (rr *responseRecorder) WriteHeader(code int) {
	// 1xx answers other than 101 are interim; the final status follows.
	if !rr.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rr.status = code
		rr.wroteHeader = true
	}
	rr.ResponseWriter.WriteHeader(code)
}

func (rr *responseRecorder) Write(b []byte) (int, error) {
	if !rr.wroteHeader {
		rr.status = http.StatusOK
		rr.wroteHeader = true
	}
	n, err := rr.ResponseWriter.Write(b)
	rr.bytes += int64(n)
	return n, err
}

// Flush passes streaming flushes through; without it the wrapper would hide
// http.Flusher from handlers.
func (rr *responseRecorder) Flush() {
	if !rr.wroteHeader {
		rr.status = http.StatusOK
		rr.wroteHeader = true
	}
	_ = http.NewResponseController(rr.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }

// statusFor is the status to record: what was written, 200 when the handler
// wrote nothing (net/http sends 200), and 500 when it panicked before writing
// (Recoverer will answer 500).
func (rr *responseRecorder) statusFor(completed bool) int {
	switch {
	case rr.wroteHeader:
		return rr.status
	case !completed:
		return http.StatusInternalServerError
	default:
		return http.StatusOK
	}
}
