package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"

	customerv1 "github.com/orderstream/orderstream/pkg/gen/orderstream/customer/v1"
	"github.com/orderstream/orderstream/pkg/personal"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// BenchmarkReadOverCQL measures a read of one order by id through the
// HTTP API and as a bare prepared SELECT by key on order_read_model, side
// by side in one run, at 1 and 64 clients, and a page of 50 orders of a
// customer through the API against the single read, and prints a table
// with the ratios.
//
//	go test -run '^$' -bench . -benchtime 1x ./services/query-service/
func BenchmarkReadOverCQL(b *testing.B) {
	e := newEnv(b)
	const orders = 1000
	ids := make([]gocql.UUID, orders)
	customerID := gocql.UUID(uuid.New())
	now := time.Now().UTC().Truncate(time.Millisecond)
	item := []readmodel.OrderItemRow{{ProductID: "sku-1", Quantity: 2, UnitPriceMinor: 1999, Currency: "EUR"}}
	for i := range ids {
		ids[i] = gocql.UUID(uuid.New())
		if err := e.session.Query(`INSERT INTO order_read_model (order_id, customer_id, items, status, created_at, updated_at, version, is_deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			ids[i], customerID, item, "CREATED", now, now, int64(1), false).Exec(); err != nil {
			b.Fatal(err)
		}
		if i < 200 {
			e.insertCustomerOrder(customerID, ids[i], now.Add(-time.Duration(i)*time.Second), "CREATED", 1)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 30 * time.Second}
	get := func(path string) error {
		resp, err := client.Get(e.url + path)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return nil
	}
	bare := func(id gocql.UUID) error {
		var r readmodel.OrderRow
		return e.session.Query(`SELECT order_id, customer_id, items, status, created_at, updated_at, version, is_deleted, deleted_at FROM order_read_model WHERE order_id = ?`, id).
			Idempotent(true).Scan(&r.OrderID, &r.CustomerID, &r.Items, &r.Status, &r.CreatedAt, &r.UpdatedAt, &r.Version, &r.IsDeleted, &r.DeletedAt)
	}
	paths := map[string]func(gocql.UUID) error{
		"bare SELECT":     bare,
		"HTTP GET by id":  func(id gocql.UUID) error { return get("/v1/orders/" + id.String()) },
		"HTTP page of 50": func(gocql.UUID) error { return get("/v1/customers/" + customerID.String() + "/orders?limit=50") },
	}

	type row struct {
		path    string
		clients int
		ops     int
		elapsed time.Duration
		cpu     time.Duration // this process's CPU time (client, server and driver)
		lat     []time.Duration
	}
	run := func(name string, clients int, d time.Duration) row {
		f := paths[name]
		var (
			mu  sync.Mutex
			all []time.Duration
			wg  sync.WaitGroup
		)
		cpu0 := processCPU()
		start := time.Now()
		for range clients {
			wg.Go(func() {
				var lat []time.Duration
				for time.Since(start) < d {
					id := ids[rand.IntN(len(ids))]
					t0 := time.Now()
					if err := f(id); err != nil {
						b.Error(err)
						return
					}
					lat = append(lat, time.Since(t0))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return row{path: name, clients: clients, ops: len(all), elapsed: time.Since(start), cpu: processCPU() - cpu0, lat: all}
	}
	pct := func(r row, p float64) time.Duration { return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

	for range b.N {
		var rows []row
		for _, clients := range []int{1, 64} {
			names := []string{"bare SELECT", "HTTP GET by id", "HTTP page of 50"}
			for _, n := range names {
				run(n, clients, time.Second) // warm-up
			}
			acc := map[string]*row{}
			for range 3 { // interleaved rounds, so drift hits every path alike
				for _, n := range names {
					r := run(n, clients, 2*time.Second)
					if acc[n] == nil {
						acc[n] = &row{path: n, clients: clients}
					}
					a := acc[n]
					a.ops, a.elapsed, a.cpu, a.lat = a.ops+r.ops, a.elapsed+r.elapsed, a.cpu+r.cpu, append(a.lat, r.lat...)
				}
			}
			for _, n := range names {
				slices.Sort(acc[n].lat)
				rows = append(rows, *acc[n])
			}
		}
		var targets []string
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "path\tclients\tops/s\tp50\tp99\tp99 ÷ bare\tops/s ÷ bare\tp50 ÷ by id\tCPU µs/op\t")
		for i := 0; i < len(rows); i += 3 {
			bare, byID := rows[i], rows[i+1]
			for _, r := range rows[i : i+3] {
				tput := float64(r.ops) / r.elapsed.Seconds()
				btput := float64(bare.ops) / bare.elapsed.Seconds()
				fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.0f\t\n", r.path, r.clients, tput, ms(pct(r, .5)), ms(pct(r, .99)),
					float64(pct(r, .99))/float64(pct(bare, .99)), tput/btput, float64(pct(r, .5))/float64(pct(byID, .5)), float64(r.cpu.Microseconds())/float64(r.ops))
			}
			limit := time.Duration(1.1*float64(pct(bare, .99))) + 300*time.Microsecond
			verdict := "met"
			if pct(byID, .99) > limit {
				verdict = "MISSED"
			}
			targets = append(targets, fmt.Sprintf("target at %d clients: by-id p99 %s ≤ 1.1 × bare + 0.3 ms = %s: %s", bare.clients, ms(pct(byID, .99)), ms(limit), verdict))
			b.ReportMetric(float64(pct(byID, .99))/1e6, fmt.Sprintf("byid-p99-ms/%dclients", bare.clients))
			b.ReportMetric(float64(pct(bare, .99))/1e6, fmt.Sprintf("bare-p99-ms/%dclients", bare.clients))
		}
		_ = w.Flush()
		for _, l := range targets {
			fmt.Println(l)
		}
		page, one := rows[2], rows[1]
		fmt.Println("CPU µs/op: this process's CPU (HTTP client, HTTP server, driver) per operation; Cassandra's is not counted.")
		fmt.Printf("target: a page of 50 by customer ≤ 2 × a by-id read (1 client, p50): %.2f×\n", float64(pct(page, .5))/float64(pct(one, .5)))
	}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPersonalDataOpening measures a read of one customer by id
// (name, email, phone and one address: five personal fields of two
// messages to open) at 1 client, three ways, interleaved in one run:
// personal data off with clear rows (the baseline), on with sealed rows
// (the data keys cached), and on with clear rows of customers who have no
// data key (registered before encryption: each read asks customer_keys),
// and prints p50 and p99 with the ratio to the baseline.
//
//	go test -run '^$' -bench PersonalDataOpening -benchtime 1x ./services/query-service/
func BenchmarkPersonalDataOpening(b *testing.B) {
	kekFile := filepath.Join(b.TempDir(), "kek")
	if err := os.WriteFile(kekFile, personal.NewRandomKeyBytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, func(c *Config) { c.Personal.Enabled, c.Personal.KEKFile = true, kekFile })
	off := *e.cfg
	off.Personal = PersonalConfig{Config: personal.DefaultConfig()}
	offHandler, err := newHandler(e.session, &off, zerolog.Nop(), prometheus.NewRegistry(), noop.NewTracerProvider())
	if err != nil {
		b.Fatal(err)
	}
	offSrv := httptest.NewServer(offHandler)
	b.Cleanup(offSrv.Close)
	kek, err := personal.ReadKEKFile(kekFile)
	if err != nil {
		b.Fatal(err)
	}
	wrapper, err := personal.NewFileWrapper(kek)
	if err != nil {
		b.Fatal(err)
	}
	kc := personal.DefaultConfig()
	kc.KEKFile = kekFile
	writer, err := personal.NewKeyring(kc, personal.NewCQLStore(e.session), wrapper, zerolog.Nop(), nil)
	if err != nil {
		b.Fatal(err)
	}

	const customers = 200
	now := time.Now().UTC().Truncate(time.Millisecond)
	insert := func(sealed bool) []gocql.UUID {
		ids := make([]gocql.UUID, customers)
		for i := range ids {
			ids[i] = gocql.UUID(uuid.New())
			id := ids[i].String()
			reg := &customerv1.CustomerRegistered{Name: "Ada Lovelace", Email: "ada@example.org", Phone: "+442079460958"}
			addr := &customerv1.CustomerAddressAdded{Address: &customerv1.Address{Label: "home", Line1: "12 St James Sq", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}}
			if sealed {
				for _, m := range []proto.Message{reg, addr} {
					if err := writer.Seal(context.Background(), m, id, id); err != nil {
						b.Fatal(err)
					}
				}
			}
			a := addr.GetAddress()
			addresses := map[gocql.UUID]readmodel.AddressRow{gocql.UUID(uuid.New()): {Label: a.GetLabel(), Line1: a.GetLine1(), City: a.GetCity(), PostalCode: a.GetPostalCode(), Country: a.GetCountry()}}
			if err := e.session.Query(`INSERT INTO customer_read_model (customer_id, name, email, phone, addresses, tier, status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ids[i], reg.GetName(), reg.GetEmail(), reg.GetPhone(), addresses, "BRONZE", "ACTIVE", int64(2), now, now).Exec(); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	sealedIDs, clearIDs := insert(true), insert(false)

	client := &http.Client{Timeout: 30 * time.Second}
	get := func(base string, id gocql.UUID, want string) {
		resp, err := client.Get(base + "/v1/customers/" + id.String())
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			b.Fatalf("GET customer: %d %s", resp.StatusCode, body)
		}
	}
	type path struct {
		name string
		read func(i int)
		lat  []time.Duration
	}
	paths := []*path{
		{name: "off, clear rows (baseline)", read: func(i int) { get(offSrv.URL, clearIDs[i%customers], `"name":"Ada Lovelace"`) }},
		{name: "on, sealed rows, keys cached", read: func(i int) { get(e.url, sealedIDs[i%customers], `"name":"Ada Lovelace"`) }},
		{name: "on, clear rows, no data key", read: func(i int) { get(e.url, clearIDs[i%customers], `"name":"Ada Lovelace"`) }},
	}
	for range b.N {
		for _, p := range paths { // warm-up: every key cached, connections open
			for i := range customers {
				p.read(i)
			}
			p.lat = p.lat[:0]
		}
		for round := range 5 { // interleaved rounds, so drift hits every path alike
			for _, p := range paths {
				start := time.Now()
				for i := 0; time.Since(start) < time.Second; i++ {
					t0 := time.Now()
					p.read(round*7 + i)
					p.lat = append(p.lat, time.Since(t0))
				}
			}
		}
		pct := func(l []time.Duration, q float64) time.Duration { return l[min(len(l)-1, int(float64(len(l))*q))] }
		ms := func(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
		for _, p := range paths {
			slices.Sort(p.lat)
		}
		base := paths[0].lat
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "GET /v1/customers/{id}, 1 client\treads\tp50\tp99\tp50 ÷ baseline\tp99 ÷ baseline\t")
		for _, p := range paths {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%.2f\t%.2f\t\n", p.name, len(p.lat), ms(pct(p.lat, .5)), ms(pct(p.lat, .99)),
				float64(pct(p.lat, .5))/float64(pct(base, .5)), float64(pct(p.lat, .99))/float64(pct(base, .99)))
		}
		_ = w.Flush()
		ratio := float64(pct(paths[1].lat, .5)) / float64(pct(base, .5))
		verdict := "met"
		if ratio > 1.1 {
			verdict = "MISSED"
		}
		fmt.Printf("target: p50 opening sealed rows ≤ 1.1 × without (1 client): %.2f×: %s\n", ratio, verdict)
		b.ReportMetric(ratio, "sealed-p50-ratio")
	}
}
