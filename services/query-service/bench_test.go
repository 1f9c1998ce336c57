package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"

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
