package servicetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/repository"
)

// What the API tests of the services share: a request and its whole
// answer, the RFC 9457 problem assertions, and the write model to commit
// what a service reads.

// Answer is an HTTP answer, read whole.
type Answer struct {
	Status int
	Header http.Header
	// Body is the answer's JSON object; nil when it is not one.
	Body map[string]any
	// Raw is the answer's body as it came.
	Raw string
}

// Do sends method url. body is nil for none, a string sent as it is, or
// anything else sent as JSON (both with Content-Type application/json);
// headers are name, value pairs.
func Do(t testing.TB, method, url string, body any, headers ...string) Answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

// RequireProblem asserts an RFC 9457 answer: the status, the problem
// content type, the type of slug, and the field it names when field is
// not empty.
func RequireProblem(t testing.TB, a Answer, status int, slug, field string) {
	t.Helper()
	require.Equal(t, status, a.Status, a.Raw)
	require.Equal(t, "application/problem+json", a.Header.Get("Content-Type"))
	require.Equal(t, "https://orderstream.dev/problems/"+slug, a.Body["type"], a.Raw)
	if field != "" {
		require.Equal(t, field, a.Body["field"], a.Raw)
	}
}

// WriteModel is the event store and the repositories over a session.
type WriteModel struct {
	Store     *eventstore.Store
	Orders    *repository.Orders
	Customers *repository.Customers
}

// NewWriteModel builds the write model over session with the default
// event store configuration, no metrics, and maxConflictRetries.
func NewWriteModel(t testing.TB, session *gocql.Session, maxConflictRetries int) WriteModel {
	t.Helper()
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	rc := eventstore.RepositoryConfig{MaxConflictRetries: maxConflictRetries}
	orders, err := repository.NewOrders(store, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	require.NoError(t, err)
	customers, err := repository.NewCustomers(store, eventcodec.NewUpcasters(), rc, zerolog.Nop(), nil)
	require.NoError(t, err)
	return WriteModel{Store: store, Orders: orders, Customers: customers}
}

// Meta is the metadata of a command committed by a test, correlated by
// correlationID.
func Meta(correlationID string) eventstore.Metadata {
	return eventstore.Metadata{CommandID: uuid.NewString(), CorrelationID: correlationID, Now: time.Now().UTC()}
}
