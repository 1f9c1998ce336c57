package httpload

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// fake is an in-memory command and query API with the semantics the load
// relies on: lifecycles and their refusals, versions, Idempotency-Key
// replay, read-your-writes with min_version. fault injects failures into
// the command API.
type fake struct {
	mu        sync.Mutex
	customers map[string]int64 // id → version
	orders    map[string]*fakeOrder
	keys      map[string]*fakeAnswer
	attempts  map[string]int // Idempotency-Key → requests seen
	reads     map[string]int // "id/min_version" → reads seen
	commits   int            // events committed
	missing   []string       // requests without the headers every request must carry

	fault   fault
	readLag bool // the first read of each version answers 409 version-not-reached
}

type fault int

const (
	noFault        fault = iota
	fail503First         // the first attempt of each key answers 503, committing nothing
	dropAfterFirst       // the first attempt of each key commits, then the connection drops unanswered
	inProgress           // the first attempt of each key answers 409 request-in-progress
	always503
)

type fakeOrder struct {
	status  string
	version int64
}

type fakeAnswer struct {
	hash   [32]byte
	status int
	body   []byte
}

func newFake(t *testing.T, f fault) (*fake, *httptest.Server) {
	t.Helper()
	fk := &fake{customers: map[string]int64{}, orders: map[string]*fakeOrder{}, keys: map[string]*fakeAnswer{},
		attempts: map[string]int{}, reads: map[string]int{}, fault: f}
	srv := httptest.NewServer(fk.handler())
	t.Cleanup(srv.Close)
	return fk, srv
}

func (f *fake) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/customers", f.register)
	mux.HandleFunc("POST /v1/customers/{id}/addresses", f.addAddress)
	mux.HandleFunc("POST /v1/orders", f.createOrder)
	mux.HandleFunc("POST /v1/orders/{id}/{action}", f.transition)
	commands := f.idempotent(mux)

	reads := http.NewServeMux()
	reads.HandleFunc("GET /v1/orders/{id}", f.read)
	reads.HandleFunc("GET /v1/customers/{id}", f.read)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Correlation-ID") == "" {
			f.mu.Lock()
			f.missing = append(f.missing, r.Method+" "+r.URL.Path+": no X-Correlation-ID")
			f.mu.Unlock()
		}
		if r.Method == http.MethodGet {
			reads.ServeHTTP(w, r)
			return
		}
		commands.ServeHTTP(w, r)
	})
}

// idempotent is command-service's Idempotency-Key contract, plus the
// injected faults.
func (f *fake) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		if key == "" {
			f.missing = append(f.missing, r.Method+" "+r.URL.Path+": no Idempotency-Key")
		}
		f.attempts[key]++
		first := f.attempts[key] == 1
		hash := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		stored := f.keys[key]
		f.mu.Unlock()

		switch {
		case f.fault == always503, f.fault == fail503First && first:
			w.Header().Set("Retry-After", "0")
			problemAnswer(w, http.StatusServiceUnavailable, "unavailable")
			return
		case f.fault == inProgress && first:
			problemAnswer(w, http.StatusConflict, "request-in-progress")
			return
		}
		if stored != nil {
			if stored.hash != hash {
				problemAnswer(w, http.StatusUnprocessableEntity, "idempotency-key-reused")
				return
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(stored.status)
			_, _ = w.Write(stored.body)
			return
		}
		rec := httptest.NewRecorder()
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(rec, r)
		f.mu.Lock()
		f.keys[key] = &fakeAnswer{hash: hash, status: rec.Code, body: rec.Body.Bytes()}
		f.mu.Unlock()
		if f.fault == dropAfterFirst && first {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func (f *fake) register(w http.ResponseWriter, r *http.Request) {
	var b struct {
		CustomerID string `json:"customer_id"`
		Name       string `json:"name"`
		Email      string `json:"email"`
	}
	if !decode(w, r, &b) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.customers[b.CustomerID]; ok || b.CustomerID == "" || b.Email == "" {
		problemAnswer(w, http.StatusConflict, "state-conflict")
		return
	}
	f.customers[b.CustomerID] = 1
	f.commits++
	acceptedAnswer(w, http.StatusCreated, b.CustomerID, 1)
}

func (f *fake) addAddress(w http.ResponseWriter, r *http.Request) {
	var b map[string]any
	if !decode(w, r, &b) {
		return
	}
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.customers[id]
	if !ok {
		problemAnswer(w, http.StatusNotFound, "not-found")
		return
	}
	f.customers[id] = v + 1
	f.commits++
	acceptedAnswer(w, http.StatusCreated, id, v+1)
}

func (f *fake) createOrder(w http.ResponseWriter, r *http.Request) {
	var b struct {
		OrderID    string `json:"order_id"`
		CustomerID string `json:"customer_id"`
		Items      []struct {
			ProductID string `json:"product_id"`
		} `json:"items"`
	}
	if !decode(w, r, &b) {
		return
	}
	products := map[string]bool{}
	for _, it := range b.Items {
		if products[it.ProductID] {
			problemAnswer(w, http.StatusUnprocessableEntity, "rule-broken") // a product twice
			return
		}
		products[it.ProductID] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.customers[b.CustomerID]; !ok || len(b.Items) == 0 {
		problemAnswer(w, http.StatusUnprocessableEntity, "rule-broken")
		return
	}
	if _, ok := f.orders[b.OrderID]; ok {
		problemAnswer(w, http.StatusConflict, "state-conflict")
		return
	}
	f.orders[b.OrderID] = &fakeOrder{status: "CREATED", version: 1}
	f.commits++
	acceptedAnswer(w, http.StatusCreated, b.OrderID, 1)
}

// transitions: action → the status it needs → the status it leads to.
var transitions = map[string]map[string]string{
	"confirm": {"CREATED": "CONFIRMED"},
	"ship":    {"CONFIRMED": "SHIPPED"},
	"deliver": {"SHIPPED": "DELIVERED"},
	"cancel":  {"CREATED": "CANCELLED", "CONFIRMED": "CANCELLED", "SHIPPED": "CANCELLED"},
}

func (f *fake) transition(w http.ResponseWriter, r *http.Request) {
	if body, _ := io.ReadAll(r.Body); len(body) > 0 && json.Unmarshal(body, new(map[string]any)) != nil {
		problemAnswer(w, http.StatusBadRequest, "malformed-json")
		return
	}
	id, action := r.PathValue("id"), r.PathValue("action")
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.orders[id]
	if !ok {
		problemAnswer(w, http.StatusNotFound, "not-found")
		return
	}
	to, ok := transitions[action][o.status]
	if !ok {
		problemAnswer(w, http.StatusConflict, "state-conflict")
		return
	}
	o.status = to
	o.version++
	f.commits++
	acceptedAnswer(w, http.StatusOK, id, o.version)
}

func (f *fake) read(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	minVersion, _ := strconv.ParseInt(r.URL.Query().Get("min_version"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	var (
		version int64
		found   bool
	)
	if o, ok := f.orders[id]; ok {
		version, found = o.version, true
	} else if v, ok := f.customers[id]; ok {
		version, found = v, true
	}
	if !found {
		problemAnswer(w, http.StatusNotFound, "not-found")
		return
	}
	at := fmt.Sprintf("%s/%d", id, minVersion)
	f.reads[at]++
	if version < minVersion || (f.readLag && f.reads[at] == 1) {
		problemAnswer(w, http.StatusConflict, "version-not-reached")
		return
	}
	acceptedAnswer(w, http.StatusOK, id, version)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, v); err != nil {
		problemAnswer(w, http.StatusBadRequest, "malformed-json")
		return false
	}
	return true
}

func acceptedAnswer(w http.ResponseWriter, status int, id string, version int64) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "version": version})
}

func problemAnswer(w http.ResponseWriter, status int, slug string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": problemTypeBase + slug, "title": slug, "status": status})
}
