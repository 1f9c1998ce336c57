package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/repository"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// BenchmarkHTTPOverStore measures one command (UpdateProfile, which always
// commits an event) through the HTTP API and straight through the
// repository, side by side in one run, at 1 and 64 clients, and prints a
// table of what the HTTP layer adds. Each client works on its own
// customers, moving to a new one every 50 commands, so that contention and
// stream length are the same on both paths.
//
//	go test -run '^$' -bench HTTPOverStore -benchtime 1x ./services/command-service/
func BenchmarkHTTPOverStore(b *testing.B) {
	e := newEnv(b)
	session := stacktest.Session(b)
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	customers, err := repository.NewCustomers(store, eventcodec.NewUpcasters(), eventstore.RepositoryConfig{MaxConflictRetries: 5}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	email, _ := value.NewEmail("bench@example.org")
	ctx := context.Background()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 30 * time.Second}

	viaStore := func(id gocql.UUID, n int) error {
		var cmd customer.Command = customer.UpdateProfile{Name: fmt.Sprintf("name %d", n)}
		if n == 0 {
			cmd = customer.RegisterCustomer{CustomerID: id.String(), Name: "bench", Email: email}
		}
		_, err := customers.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()})
		return err
	}
	viaHTTP := func(id gocql.UUID, n int) error {
		method, path, body := "PATCH", "/v1/customers/"+id.String()+"/profile", fmt.Sprintf(`{"name":"name %d"}`, n)
		if n == 0 {
			method, path, body = "POST", "/v1/customers", fmt.Sprintf(`{"customer_id":%q,"name":"bench","email":"bench@example.org"}`, id)
		}
		req, _ := http.NewRequest(method, e.url+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	type row struct {
		path    string
		clients int
		ops     int
		elapsed time.Duration
		lat     []time.Duration
	}
	run := func(name string, clients int, d time.Duration, f func(gocql.UUID, int) error) row {
		var (
			mu  sync.Mutex
			all []time.Duration
			wg  sync.WaitGroup
		)
		start := time.Now()
		for range clients {
			wg.Go(func() {
				var lat []time.Duration
				id, n := gocql.UUID(uuid.New()), 0
				for time.Since(start) < d {
					if n == 50 {
						id, n = gocql.UUID(uuid.New()), 0
					}
					t0 := time.Now()
					if err := f(id, n); err != nil {
						b.Error(err)
						return
					}
					if n > 0 { // registration is setup, not measured
						lat = append(lat, time.Since(t0))
					}
					n++
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(all)
		return row{path: name, clients: clients, ops: len(all), elapsed: time.Since(start), lat: all}
	}
	pct := func(r row, p float64) time.Duration { return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))] }
	// commandTime is the total time the service spent inside the command
	// (load, decide, commit) for UpdateProfile, from its own histogram.
	commandTime := func() (time.Duration, uint64) {
		families, err := e.reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "orderstream_command_duration_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "command" && l.GetValue() == "UpdateProfile" {
						h := m.GetHistogram()
						return time.Duration(h.GetSampleSum() * float64(time.Second)), h.GetSampleCount()
					}
				}
			}
		}
		return 0, 0
	}
	mean := func(lat []time.Duration) time.Duration {
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		return sum / time.Duration(max(len(lat), 1))
	}

	for range b.N {
		var rows []row
		var layer []string
		for _, clients := range []int{1, 64} {
			run("store", clients, 2*time.Second, viaStore) // warm-up
			run("http", clients, 2*time.Second, viaHTTP)
			var s, h row
			var inside time.Duration
			var insideN uint64
			for range 3 { // interleaved rounds
				rs := run("store", clients, 3*time.Second, viaStore)
				before, beforeN := commandTime()
				rh := run("http", clients, 3*time.Second, viaHTTP)
				after, afterN := commandTime()
				inside += after - before
				insideN += afterN - beforeN
				s.ops, s.elapsed, s.lat = s.ops+rs.ops, s.elapsed+rs.elapsed, append(s.lat, rs.lat...)
				h.ops, h.elapsed, h.lat = h.ops+rh.ops, h.elapsed+rh.elapsed, append(h.lat, rh.lat...)
			}
			slices.Sort(s.lat)
			slices.Sort(h.lat)
			s.path, s.clients, h.path, h.clients = "repository.Handle", clients, "HTTP PATCH", clients
			rows = append(rows, s, h)
			// The HTTP layer's own cost, on the very same requests: what the
			// client waited minus what the service spent in the command.
			// Free of the run-to-run noise of the database.
			if insideN > 0 {
				layer = append(layer, fmt.Sprintf("%d clients: mean request %s, mean command inside it %s, HTTP layer adds %s",
					clients, mean(h.lat), inside/time.Duration(insideN), mean(h.lat)-inside/time.Duration(insideN)))
			}
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "path\tclients\tops/s\tp50\tp99\tHTTP adds at p50\tHTTP ops/s ÷ store\t")
		for i := 0; i < len(rows); i += 2 {
			s, h := rows[i], rows[i+1]
			ts, th := float64(s.ops)/s.elapsed.Seconds(), float64(h.ops)/h.elapsed.Seconds()
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t\t\t\n", s.path, s.clients, ts, pct(s, .5), pct(s, .99))
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%s\t%.2f\t\n", h.path, h.clients, th, pct(h, .5), pct(h, .99), pct(h, .5)-pct(s, .5), th/ts)
			b.ReportMetric(float64(pct(h, .5)-pct(s, .5))/1e6, fmt.Sprintf("http-adds-p50-ms/%dclients", s.clients))
			b.ReportMetric(th/ts, fmt.Sprintf("http-throughput-ratio/%dclients", s.clients))
		}
		_ = w.Flush()
		fmt.Println("targets: HTTP adds ≤ 0.3 ms at p50; HTTP throughput ≥ 0.90 × store")
		for _, l := range layer {
			fmt.Println(l)
		}
	}
}

// BenchmarkPersonalSealingRatio measures the commit latency of a command
// with a personal field (UpdateProfile: load, decide, commit) through the
// repository at 1 client, in clear and with personal data sealed
// (repository.Sealing on the real customer_keys, key cached as in
// service), in interleaved rounds, and reports sealed p50 ÷ clear p50:
// issue 20's target is 1.1 at most.
//
//	go test -run '^$' -bench PersonalSealingRatio -benchtime 1x ./services/command-service/
func BenchmarkPersonalSealingRatio(b *testing.B) {
	session := stacktest.Session(b)
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := personal.DefaultConfig()
	cfg.KEKFile = writeKEK(b)
	keys, err := newKeyring(session, cfg, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	up := eventcodec.NewUpcasters()
	sealing, err := repository.NewSealing(store, keys, up, 1000, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	rc := eventstore.RepositoryConfig{MaxConflictRetries: 5}
	clearRepo, err := repository.NewCustomers(store, up, rc, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	sealedRepo, err := repository.NewCustomers(sealing, up, rc, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	email, _ := value.NewEmail("bench@example.org")
	ctx := context.Background()
	run := func(repo *repository.Customers, d time.Duration) []time.Duration {
		var lat []time.Duration
		id, n := gocql.UUID(uuid.New()), 0
		for start := time.Now(); time.Since(start) < d; n++ {
			if n == 50 {
				id, n = gocql.UUID(uuid.New()), 0
			}
			var cmd customer.Command = customer.UpdateProfile{Name: fmt.Sprintf("Ada Lovelace %d", n)}
			if n == 0 {
				cmd = customer.RegisterCustomer{CustomerID: id.String(), Name: "Ada Lovelace", Email: email}
			}
			t0 := time.Now()
			if _, err := repo.Handle(ctx, id, cmd, eventstore.Metadata{CommandID: uuid.NewString(), Now: time.Now()}); err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				lat = append(lat, time.Since(t0))
			}
		}
		return lat
	}
	p50 := func(lat []time.Duration) time.Duration {
		slices.Sort(lat)
		return lat[len(lat)/2]
	}
	for range b.N {
		run(clearRepo, time.Second) // warm-up
		run(sealedRepo, time.Second)
		var plain, sealed []time.Duration
		for range 3 {
			plain = append(plain, run(clearRepo, 3*time.Second)...)
			sealed = append(sealed, run(sealedRepo, 3*time.Second)...)
		}
		pp, ps := p50(plain), p50(sealed)
		fmt.Printf("commit p50 at 1 client: clear %s, sealed %s, ratio %.3f (target ≤ 1.1)\n", pp, ps, float64(ps)/float64(pp))
		b.ReportMetric(float64(ps)/float64(pp), "sealed/clear-p50")
	}
}
