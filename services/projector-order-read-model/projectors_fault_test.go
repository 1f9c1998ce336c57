//go:build fault

package main

// Fault tests are built only with -tags fault and run after every other
// test (make test's second phase): they load the shared stack heavily.

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/loadgen"
	"github.com/orderstream/orderstream/pkg/readmodel/readmodeltest"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The relay's load (20,000 commands across 2,000 aggregates) while the
// four projector services run as real processes, each SIGKILLed once
// mid-stream and restarted: every read model ends exactly equal to the
// fold of event_store.
func TestFaultProjectorsKilledUnderLoad(t *testing.T) {
	kc := stacktest.RequireKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	session, c := stacktest.PrivateKeyspace(t, "projfault_")
	keyspace := c.Keyspace
	wm := servicetest.NewWriteModel(t, session, 10)
	store, orders, customers := wm.Store, wm.Orders, wm.Customers

	// Private topics, and the relay in this process.
	prefix := relaytest.Topics(ctx, t, kc, "fault", 6)
	defer relaytest.Run(ctx, t, session, store, kc, prefix)()

	// The four projector services.
	type service struct {
		name, bin, addr string
		p               *servicetest.Process
	}
	var services []*service
	for _, name := range []string{"projector-order-read-model", "projector-orders-by-customer", "projector-orders-by-status", "projector-customer-read-model"} {
		services = append(services, &service{name: name, bin: servicetest.BuildDir(t, "../"+name)})
	}
	group := stacktest.UniqueName("fault-")
	start := func(s *service) {
		s.addr = servicetest.FreeAddr(t)
		s.p = servicetest.Start(t, s.bin, []string{
			"ORDERSTREAM_ADMIN_ADDR=" + s.addr,
			"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
			"ORDERSTREAM_CQL_KEYSPACE=" + keyspace,
			"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kc.Brokers, ","),
			"ORDERSTREAM_PROJECTOR_TOPIC_PREFIX=" + prefix,
			"ORDERSTREAM_PROJECTOR_GROUP=" + group + s.name,
			"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
		})
	}
	for _, s := range services {
		start(s)
	}
	for _, s := range services {
		servicetest.WaitHTTP(t, s.p, "http://"+s.addr+"/readyz", http.StatusOK, 90*time.Second)
	}

	// The load, with each projector killed once part-way and restarted.
	loadDone := make(chan error, 1)
	var committed int64
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{Commands: 20_000, Aggregates: 2_000, Workers: 32, Seed: rand.Uint64()}, orders, customers)
		if res != nil {
			committed = res.Commands.Load()
		}
		loadDone <- err
	}()
	for _, s := range services {
		time.Sleep(4 * time.Second)
		require.NoError(t, s.p.Signal(syscall.SIGKILL))
		s.p.Wait(10 * time.Second) // a process killed by a signal has no exit code
		t.Logf("killed %s", s.name)
		start(s)
	}
	require.NoError(t, <-loadDone)
	t.Logf("%d commands committed", committed)
	require.EqualValues(t, 20_000, committed)

	var last readmodeltest.Report
	require.Eventually(t, func() bool {
		r, err := readmodeltest.Check(ctx, session, store)
		if err != nil {
			t.Logf("check: %v", err)
			return false
		}
		last = r
		return r.OK()
	}, 4*time.Minute, 2*time.Second, "read models never matched event_store: %d differences, e.g. %v", len(last.Mismatches), first(last.Mismatches, 10))
	for _, s := range services {
		servicetest.WaitHTTP(t, s.p, "http://"+s.addr+"/readyz", http.StatusOK, 30*time.Second)
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
