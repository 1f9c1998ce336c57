package httpload

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The load against the real services, started as processes on a keyspace
// and topics of the test's own: command-service and query-service, the
// order and customer read-model projectors, and the relay in this
// process. Every valid command is carried out, every invalid one refused
// as it must be, every sampled commit reaches its read model, and each
// commit is in event_store at the version the API answered, made by the
// request that carried its key.
func TestAgainstTheServices(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts four services")
	}
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	session, c := stacktest.PrivateKeyspace(t, "httpload_")
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	prefix := relaytest.Topics(ctx, t, kc, "httpload", 3)
	relaytest.Run(ctx, t, session, store, kc, prefix)

	common := []string{
		"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
		"ORDERSTREAM_CQL_KEYSPACE=" + c.Keyspace,
		"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
	}
	group := stacktest.UniqueName("httpload-")
	type service struct {
		name string
		env  []string
		api  string // the API's address, for the services that serve one
		p    *servicetest.Process
		adm  string
	}
	commands := &service{name: "command-service", api: servicetest.FreeAddr(t)}
	queries := &service{name: "query-service", api: servicetest.FreeAddr(t)}
	services := []*service{commands, queries}
	for _, name := range []string{"projector-order-read-model", "projector-customer-read-model"} {
		services = append(services, &service{name: name, env: []string{
			"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ","),
			"ORDERSTREAM_PROJECTOR_TOPIC_PREFIX=" + prefix,
			"ORDERSTREAM_PROJECTOR_GROUP=" + group + name,
		}})
	}
	for _, s := range services {
		bin := servicetest.BuildDir(t, "../../services/"+s.name)
		s.adm = servicetest.FreeAddr(t)
		env := append(append(append([]string{}, common...), s.env...), "ORDERSTREAM_ADMIN_ADDR="+s.adm)
		if s.api != "" {
			env = append(env, "ORDERSTREAM_HTTP_ADDR="+s.api)
		}
		s.p = servicetest.Start(t, bin, env)
	}
	for _, s := range services {
		servicetest.WaitHTTP(t, s.p, "http://"+s.adm+"/readyz", http.StatusOK, 90*time.Second)
	}

	r, err := Run(ctx, Config{
		CommandURL: "http://" + commands.api, QueryURL: "http://" + queries.api,
		Clients: 4, Commands: 300, InvalidEvery: 10, ReadEvery: 5, Seed: 1, Progress: testWriter{t},
	})
	require.NoError(t, err)
	var table strings.Builder
	r.Table(&table)
	t.Logf("\n%s", table.String())
	require.Zero(t, r.UnexpectedTotal(), "unexpected: %v %v", r.Unexpected, r.Samples)
	require.Equal(t, 300, r.Commands)
	require.InDelta(t, 30, countRejected(r), 4)
	for _, k := range []string{"ship-created → 409", "malformed-body → 400", "unknown-customer → 422", "unknown-order → 404"} {
		require.Positive(t, r.Rejected[k], "rejections %v", r.Rejected)
	}
	require.Positive(t, r.ReadLatency.Count)

	// Each commit is the event at its version, carrying its request's
	// correlation id (the Idempotency-Key), and nothing else was committed.
	last := map[string]int64{}
	for _, cm := range r.Committed() {
		id := gocql.UUID(uuid.MustParse(cm.AggregateID))
		var found bool
		require.NoError(t, store.Events(ctx, id, cm.Version-1, cm.Version, func(e eventstore.Event) error {
			found = true
			require.Equal(t, cm.IdempotencyKey, e.CorrelationID, "%s %s version %d", cm.Kind, cm.AggregateID, cm.Version)
			return nil
		}))
		require.True(t, found, "%s %s version %d is not in event_store", cm.Kind, cm.AggregateID, cm.Version)
		last[cm.AggregateID] = max(last[cm.AggregateID], cm.Version)
	}
	for id, v := range last {
		current, typ, err := store.Version(ctx, gocql.UUID(uuid.MustParse(id)))
		require.NoError(t, err)
		require.Equal(t, v, current, "%s %s", typ, id)
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
