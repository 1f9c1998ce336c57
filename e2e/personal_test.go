package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/accounting"
	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/record"
)

// The tokens of the system TestForgetCustomerLeavesNoClearPersonalData
// runs: forgetting and the projectors' mutating admin endpoints.
const (
	forgetToken = "e2e-forget-token-0123456789abcdef"
	adminToken  = "e2e-admin-token-0123456789abcdef"
)

// personalEnv switches personal data on in every service that reads it
// (command-service seals, query-service opens; the others ignore the
// keys), with a KEK of the test's own and a short key cache, so that
// query-service stops opening a forgotten customer's fields within a
// second instead of a minute (docs/personal-data.md), and snapshots
// every other event.
func personalEnv(t *testing.T) []string {
	t.Helper()
	kek := make([]byte, personal.KeySize)
	_, _ = rand.Read(kek)
	path := filepath.Join(t.TempDir(), "kek")
	require.NoError(t, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(kek)), 0o600))
	return []string{
		"ORDERSTREAM_PERSONAL_ENABLED=true",
		"ORDERSTREAM_PERSONAL_KEK_FILE=" + path,
		"ORDERSTREAM_PERSONAL_CACHE_TTL=1s",
		"ORDERSTREAM_FORGET_TOKEN=" + forgetToken,
		"ORDERSTREAM_ADMIN_TOKEN=" + adminToken,
		// A snapshot every other event, so that the scan finds some.
		"ORDERSTREAM_EVENTSTORE_SNAPSHOT_EVERY=2",
	}
}

// Issue 20's proof, against the whole system: a customer with personal
// data and orders (one delivered, signed with the customer's name) is
// forgotten; then no clear byte of their name, email, phone or address is
// left in any table of the keyspace (event_store, snapshots, the four read
// models, projection_checkpoints, the dead letters, …) or any record of
// the topics, while their orders keep status, amounts and history, the
// accounting checker agrees, and a rebuild of the customer view and a
// replay of the customer topic both yield the redacted customer.
func TestForgetCustomerLeavesNoClearPersonalData(t *testing.T) {
	s := Start(t, Options{Env: personalEnv(t)})
	c := NewClient(t)
	cmd, qry := s.URL("command-service"), s.URL("query-service")
	var acked []accounting.Acked
	ack := func(id string, v int64) {
		acked = append(acked, accounting.Acked{AggregateID: mustUUID(t, id), Version: v})
	}

	// Clear values unlike anything else in the keyspace, so that a find
	// is theirs and not a coincidence.
	tag := strings.ToLower(strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
	digits := fmt.Sprintf("%04d", int(uuid.New()[0])*31%10000)
	clear := map[string]string{
		"name":        "Zenobia Quillfeather " + tag,
		"email":       "zenobia." + tag + "@example.org",
		"phone":       "+4420794" + digits,
		"line1":       tag + " Larkspur Lane",
		"line2":       "Flat " + tag,
		"city":        "Wexmoor" + tag,
		"postal_code": "ZX" + digits,
		"signature":   "Z. Quillfeather " + tag,
	}

	id, v := c.Command("POST", cmd+"/v1/customers", map[string]any{"name": clear["name"], "email": clear["email"], "phone": clear["phone"]})
	ack(id, v)
	_, v = c.Command("POST", cmd+"/v1/customers/"+id+"/addresses", map[string]any{"label": "home", "line1": clear["line1"],
		"line2": clear["line2"], "city": clear["city"], "postal_code": clear["postal_code"], "country": "GB"})
	ack(id, v)
	customerVersion := v

	item := func(sku string, qty, minor int) []map[string]any {
		return []map[string]any{{"product_id": sku, "quantity": qty, "unit_price": map[string]any{"amount_minor": minor, "currency": "GBP"}}}
	}
	delivered, v := c.Command("POST", cmd+"/v1/orders", map[string]any{"customer_id": id, "items": item("orrery", 2, 12500)})
	ack(delivered, v)
	for _, step := range []struct {
		path string
		body any
	}{
		{"/confirm", nil},
		{"/ship", map[string]any{"carrier": "Royal Mail", "tracking_number": "RM" + digits + "GB"}},
		{"/deliver", map[string]any{"signature": clear["signature"]}},
	} {
		_, v = c.Command("POST", cmd+"/v1/orders/"+delivered+step.path, step.body)
		ack(delivered, v)
	}
	cancelled, v := c.Command("POST", cmd+"/v1/orders", map[string]any{"customer_id": id, "items": item("sextant", 1, 4000)})
	ack(cancelled, v)
	_, v = c.Command("POST", cmd+"/v1/orders/"+cancelled+"/cancel", map[string]any{"reason": "changed my mind", "cancelled_by": "customer"})
	ack(cancelled, v)

	// Before the forget, query-service opens what everything else holds
	// sealed.
	cu := okJSON(t, c.Do("GET", fmt.Sprintf("%s/v1/customers/%s?min_version=%d", qry, id, customerVersion), nil))
	require.Equal(t, clear["name"], cu["name"])
	require.Equal(t, clear["email"], cu["email"])
	require.Equal(t, clear["phone"], cu["phone"])
	require.Equal(t, clear["line1"], cu["addresses"].([]any)[0].(map[string]any)["line1"])
	om := okJSON(t, c.Do("GET", qry+"/v1/orders/"+delivered+"?min_version=4", nil))
	require.Equal(t, clear["signature"], om["delivery_signature"])
	before := okJSON(t, c.Do("GET", qry+"/v1/customers/"+id+"/events", nil))
	require.Contains(t, fmt.Sprint(before["events"]), clear["name"], "the history opens the payloads")
	s.Account(context.Background(), acked, time.Minute) // every view has caught up
	require.Contains(t, dump(t, s.Session, "event_store"), personal.TextPrefix, "the events hold ciphertexts (else the scan proves nothing)")
	require.Contains(t, dump(t, s.Session, "snapshots"), personal.TextPrefix, "and so do the snapshots")
	requireNoClear(t, s, clear, "before the forget")

	// Forget.
	fg := c.Do("POST", cmd+"/v1/customers/"+id+"/forget", nil, "Authorization", "Bearer "+forgetToken, "X-Requested-By", "e2e-dpo")
	require.Equal(t, http.StatusOK, fg.Status, "%s", fg.Body)
	forgottenAt := int64(fg.JSON(t)["version"].(float64))
	ack(id, forgottenAt)
	require.Equal(t, customerVersion+1, forgottenAt)

	// Reads show the marker, with 200s.
	cu = okJSON(t, c.Do("GET", fmt.Sprintf("%s/v1/customers/%s?min_version=%d", qry, id, forgottenAt), nil))
	require.Equal(t, personal.Redacted, cu["name"])
	require.Equal(t, personal.Redacted, cu["email"])
	require.Equal(t, personal.Redacted, cu["phone"])
	require.Empty(t, cu["addresses"])
	require.Equal(t, "ACTIVE", cu["status"], "what is not personal stays")
	require.Eventually(t, func() bool { // query-service's cached key expires within personal.cache_ttl
		o := okJSON(t, c.Do("GET", qry+"/v1/orders/"+delivered, nil))
		return o["delivery_signature"] == personal.Redacted
	}, 10*time.Second, 100*time.Millisecond)
	at := okJSON(t, c.Do("GET", qry+"/v1/customers/"+id+"?at_version=2", nil))
	require.Equal(t, personal.Redacted, at["name"])
	require.Equal(t, personal.Redacted, at["addresses"].([]any)[0].(map[string]any)["line1"])
	for _, path := range []string{"/v1/customers/" + id + "/events", "/v1/orders/" + delivered + "/events"} {
		h := c.Do("GET", qry+path, nil)
		require.Equal(t, http.StatusOK, h.Status, "%s", h.Body)
		requireNoneOf(t, personal.StripSealed(string(h.Body)), clear, path)
	}
	gone := c.Do("PATCH", cmd+"/v1/customers/"+id+"/profile", map[string]any{"name": "Someone Else"})
	require.Equal(t, http.StatusGone, gone.Status, "%s", gone.Body)

	// The orders keep everything that is not personal.
	om = okJSON(t, c.Do("GET", qry+"/v1/orders/"+delivered, nil))
	require.Equal(t, "DELIVERED", om["status"])
	require.EqualValues(t, 4, om["version"])
	require.Equal(t, "Royal Mail", om["carrier"])
	require.Equal(t, []any{map[string]any{"amount_minor": 25000.0, "currency": "GBP"}}, om["totals"])
	xm := okJSON(t, c.Do("GET", qry+"/v1/orders/"+cancelled, nil))
	require.Equal(t, "CANCELLED", xm["status"])
	require.Equal(t, "changed my mind", xm["cancel_reason"])
	h := okJSON(t, c.Do("GET", qry+"/v1/orders/"+delivered+"/events", nil))
	require.Len(t, h["events"], 4)
	list := okJSON(t, c.Do("GET", qry+"/v1/customers/"+id+"/orders", nil))
	require.Len(t, list["orders"], 2)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := s.Account(ctx, acked, time.Minute)
	require.Equal(t, 3, r.Aggregates)
	requireNoClear(t, s, clear, "after the forget")

	// A replay of the customer topic folds to the redacted row the view
	// holds.
	replayed := replayCustomer(t, s, mustUUID(t, id))
	row, found, err := readmodel.ReadCustomer(ctx, s.Session, mustUUID(t, id))
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, replayed, row)
	require.Equal(t, personal.Redacted, row.Name)

	// A rebuild of the customer view after the forget yields it again.
	rebuildView(t, s, "projector-customer-read-model")
	require.Eventually(t, func() bool {
		cu := okJSON(t, c.Do("GET", qry+"/v1/customers/"+id, nil))
		return cu["name"] == personal.Redacted && cu["email"] == personal.Redacted && int64(cu["version"].(float64)) == forgottenAt
	}, time.Minute, 200*time.Millisecond)
	requireNoClear(t, s, clear, "after the rebuild") // the new generation's tables included
}

func okJSON(t *testing.T, a Answer) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	return a.JSON(t)
}

// requireNoClear scans every row of every table of the system's keyspace
// and every record of its topics for the clear values (ciphertexts cut out
// first: their base64 may spell a short word by chance).
func requireNoClear(t *testing.T, s *System, clear map[string]string, when string) {
	t.Helper()
	var tables []string
	iter := s.Session.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, s.CQL.Keyspace).Iter()
	var name string
	for iter.Scan(&name) {
		tables = append(tables, name)
	}
	require.NoError(t, iter.Close())
	for _, want := range []string{"event_store", "snapshots", "projection_checkpoints", "dead_letter_queue",
		readmodel.OrderReadModelTable, readmodel.OrdersByCustomerTable, readmodel.OrdersByStatusTable, readmodel.CustomerReadModelTable} {
		require.Contains(t, tables, want, "the scan must cover %s", want)
	}
	for _, table := range tables {
		requireNoneOf(t, personal.StripSealed(dump(t, s.Session, table)), clear, when+", table "+table)
	}
	for _, topic := range []string{record.TopicOf(s.Prefix, order.AggregateType), record.TopicOf(s.Prefix, customer.AggregateType), record.HintTopicOf(s.Prefix)} {
		for _, msg := range readAll(t, s.Kafka, topic) {
			var b strings.Builder
			b.Write(msg.Key)
			b.WriteByte(' ')
			b.Write(msg.Value)
			for _, h := range msg.Headers {
				fmt.Fprintf(&b, " %s=%s", h.Key, h.Value)
			}
			requireNoneOf(t, personal.StripSealed(b.String()), clear, fmt.Sprintf("%s, record %s/%d@%d", when, topic, msg.Partition, msg.Offset))
		}
	}
}

func requireNoneOf(t *testing.T, text string, clear map[string]string, where string) {
	t.Helper()
	lower := strings.ToLower(text)
	for field, v := range clear {
		require.NotContains(t, lower, strings.ToLower(v), "%s: the clear %s", where, field)
	}
}

// dump is every row of a table as text: each column's value, blobs as
// their bytes.
func dump(t *testing.T, session *gocql.Session, table string) string {
	t.Helper()
	var b strings.Builder
	iter := session.Query(`SELECT * FROM ` + table).PageSize(500).Iter()
	for {
		row := map[string]any{}
		if !iter.MapScan(row) {
			break
		}
		cols := make([]string, 0, len(row))
		for c := range row {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		for _, c := range cols {
			switch v := row[c].(type) {
			case []byte:
				fmt.Fprintf(&b, "%s=%s ", c, v)
			default:
				fmt.Fprintf(&b, "%s=%v ", c, v)
			}
		}
		b.WriteByte('\n')
	}
	require.NoError(t, iter.Close(), "reading %s", table)
	return b.String()
}

// readAll reads every record of a topic, from the oldest offset to the
// high-water mark at the start; none when the topic does not exist.
func readAll(t *testing.T, kc kafka.Config, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc, err := kc.Sarama("e2e-personal-scan")
	require.NoError(t, err)
	client, err := kafka.Connect(ctx, kc, sc)
	require.NoError(t, err)
	defer client.Close()
	topics, err := client.Topics()
	require.NoError(t, err)
	if !contains(topics, topic) {
		return nil
	}
	partitions, err := client.Partitions(topic)
	require.NoError(t, err)
	consumer, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	defer consumer.Close()
	var out []*sarama.ConsumerMessage
	for _, p := range partitions {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		if end <= start {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		require.NoError(t, err)
		for done := false; !done; {
			select {
			case msg := <-pc.Messages():
				out = append(out, msg)
				done = msg.Offset+1 >= end
			case err := <-pc.Errors():
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatalf("reading %s/%d: %v", topic, p, ctx.Err())
			}
		}
		require.NoError(t, pc.Close())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// replayCustomer folds the customer's records of the customer topic, in
// sequence order, as a projector would, into its read-model row.
func replayCustomer(t *testing.T, s *System, id gocql.UUID) readmodel.CustomerRow {
	t.Helper()
	var state readmodel.Customer
	up := eventcodec.NewUpcasters()
	var last int64
	for _, msg := range readAll(t, s.Kafka, record.TopicOf(s.Prefix, customer.AggregateType)) {
		d, err := record.Decode(msg)
		require.NoError(t, err)
		require.NoError(t, d.Err)
		e := d.Event
		if e.AggregateID != id || e.Sequence <= last {
			continue // another customer, or a re-sent copy
		}
		require.Equal(t, last+1, e.Sequence, "the records of one key arrive in order")
		last = e.Sequence
		e, err = up.Upcast(e)
		require.NoError(t, err)
		state, err = readmodel.FoldCustomer(state, e)
		require.NoError(t, err)
	}
	row, err := readmodel.CustomerRowOf(id, state, state.State.Version)
	require.NoError(t, err)
	return row
}

// rebuildView asks a projector to rebuild its view (POST /rebuild on its
// admin port, into a new generation) and waits until the new generation
// is the active one and the rebuild idle.
func rebuildView(t *testing.T, s *System, projector string) {
	t.Helper()
	c := NewClient(t)
	url := s.AdminURL(projector) + "/rebuild"
	status := func() (string, int) {
		st := c.Do("GET", url, nil)
		require.Equal(t, http.StatusOK, st.Status, "%s", st.Body)
		m := st.JSON(t)
		state, _ := m["state"].(string)
		active, _ := m["active_generation"].(float64)
		return state, int(active)
	}
	_, before := status()
	a := c.Do("POST", url, nil, "Authorization", "Bearer "+adminToken)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Body)
	require.Eventually(t, func() bool {
		state, active := status()
		return state == "idle" && active > before
	}, 2*time.Minute, 500*time.Millisecond, "the rebuild of %s did not finish", projector)
}
