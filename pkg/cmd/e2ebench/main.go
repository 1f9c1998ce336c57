// Command e2ebench measures the whole system end to end (`make bench-e2e`,
// after `make up`): the HTTP load of pkg/httpload at 1, 16 and 64 clients
// for the same duration each, against the running command and query APIs,
// with every n-th committed command read back with min_version to measure
// commit→read-model latency (command-service → event_store → relay →
// Kafka → projector → read model → query-service). It prints each run's
// table, a summary with ratios to the 1-client row and the distribution of
// the commit→read-model latency; with -markdown it writes them, with the
// machine and the command, into that file between e2ebench's markers
// (other sections of the file are kept).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/pkg/httpload"
)

var (
	commandURL   = flag.String("command-url", "http://127.0.0.1:8081", "command API base URL")
	queryURL     = flag.String("query-url", "http://127.0.0.1:8082", "query API base URL")
	clientsFlag  = flag.String("clients", "1,16,64", "client counts to run, comma-separated; the first is the ratios' base")
	duration     = flag.Duration("duration", 20*time.Second, "length of each run")
	warmup       = flag.Duration("warmup", 5*time.Second, "unmeasured load at 4 clients before the runs")
	invalidEvery = flag.Int("invalid-every", 20, "every n-th command of a client is one the API must refuse")
	readEvery    = flag.Int("read-every", 10, "every n-th committed command of a client is read back with min_version")
	seed         = flag.Uint64("seed", 1, "seed of the command mix")
	markdown     = flag.String("markdown", "", "write the figures into this Markdown file (e.g. docs/benchmarks.md)")
	system       = flag.String("system", "the eight services of `make up` as local processes, with Apache Cassandra and Apache Kafka on loopback, all on this machine",
		"what the load ran against, for the Markdown")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

type result struct {
	clients int
	report  *httpload.Report
	table   string
}

func run() error {
	clients, err := parseClients(*clientsFlag)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := preflight(ctx); err != nil {
		return err
	}
	m := describeMachine()
	started := time.Now().UTC()

	if *warmup > 0 {
		fmt.Fprintf(os.Stderr, "warm-up: 4 clients for %s\n", *warmup)
		if _, err := httpload.Run(ctx, config(4, *warmup, nil)); err != nil {
			return err
		}
	}
	var results []result
	for _, n := range clients {
		fmt.Fprintf(os.Stderr, "run: %d clients for %s\n", n, *duration)
		r, err := httpload.Run(ctx, config(n, *duration, os.Stderr))
		if err != nil {
			return err
		}
		var b strings.Builder
		r.Table(&b)
		fmt.Printf("\n== %s ==\n%s", clientsName(n), b.String())
		results = append(results, result{clients: n, report: r, table: b.String()})
	}

	fmt.Println()
	summary(os.Stdout, results)
	fmt.Println()
	distribution(os.Stdout, results)

	if *markdown != "" {
		if err := writeMarkdown(*markdown, m, started, results); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *markdown)
	}
	var unexpected int
	for _, r := range results {
		unexpected += r.report.UnexpectedTotal()
	}
	if unexpected > 0 {
		return fmt.Errorf("%d unexpected outcomes (see the tables)", unexpected)
	}
	return nil
}

func config(clients int, d time.Duration, progress io.Writer) httpload.Config {
	return httpload.Config{
		CommandURL: *commandURL, QueryURL: *queryURL, Clients: clients, Duration: d,
		InvalidEvery: *invalidEvery, ReadEvery: *readEvery, Seed: *seed, Progress: progress,
	}
}

func parseClients(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-clients: want positive counts separated by commas, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// preflight checks that both APIs answer, so that a system that is not up
// fails at once with a hint instead of after a run of retries.
func preflight(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	var errs []error
	for _, u := range []string{*commandURL, *queryURL} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/openapi.json", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("GET %s/openapi.json: %s", u, resp.Status))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the system is not up (run `make up` first): %w", err)
	}
	return nil
}

// summary is one row per run: rate, latency of all commands and
// commit→read-model, with ratios to the first row.
func summary(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tcommands/s\tp50\tp99\tcommit→read p50\tcommit→read p99\tcommands/s ×1\tp50 ×1\tp99 ×1\tread p50 ×1\tunexpected\t")
	base := results[0].report
	for _, r := range results {
		rp := r.report
		fmt.Fprintf(tw, "%d\t%.1f\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", r.clients, rp.CommandsPerSecond(),
			ms(rp.All.P50), ms(rp.All.P99), ms(rp.ReadLatency.P50), ms(rp.ReadLatency.P99),
			ratio(rp.CommandsPerSecond(), base.CommandsPerSecond()),
			ratio(float64(rp.All.P50), float64(base.All.P50)), ratio(float64(rp.All.P99), float64(base.All.P99)),
			ratio(float64(rp.ReadLatency.P50), float64(base.ReadLatency.P50)), rp.UnexpectedTotal())
	}
	_ = tw.Flush()
}

// buckets are the upper bounds of the distribution's columns.
var buckets = []time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second}

// distribution shows, per run, the share of commit→read-model samples
// within each bound (cumulative).
func distribution(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "commit→read model, share within\tsamples\t")
	for _, b := range buckets {
		fmt.Fprintf(tw, "≤%s\t", b)
	}
	fmt.Fprintln(tw, "max\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t", clientsName(r.clients), len(r.report.ReadSamples))
		for _, share := range shares(r.report.ReadSamples) {
			fmt.Fprintf(tw, "%.1f%%\t", share)
		}
		fmt.Fprintf(tw, "%s\t\n", ms(r.report.ReadLatency.Max))
	}
	_ = tw.Flush()
}

// shares is the cumulative share (in %) of sorted samples within each bucket.
func shares(sorted []time.Duration) []float64 {
	out := make([]float64, len(buckets))
	if len(sorted) == 0 {
		return out
	}
	i := 0
	for j, b := range buckets {
		for i < len(sorted) && sorted[i] <= b {
			i++
		}
		out[j] = 100 * float64(i) / float64(len(sorted))
	}
	return out
}

func clientsName(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d clients", n)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// machine is what the figures ran on.
type machine struct {
	cpu     string
	cores   int
	memory  string
	kernel  string
	loadavg string
}

func describeMachine() machine {
	m := machine{cpu: "unknown CPU", cores: runtime.NumCPU(), memory: "unknown", kernel: runtime.GOOS}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64); err == nil {
					m.memory = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Markers delimit e2ebench's section, so that other benches' figures in
// the same file are kept.
const (
	beginMarker = "<!-- e2ebench:begin (written by go run ./pkg/cmd/e2ebench -markdown; do not edit by hand) -->"
	endMarker   = "<!-- e2ebench:end -->"
)

func writeMarkdown(path string, m machine, started time.Time, results []result) error {
	var b strings.Builder
	fmt.Fprintln(&b, beginMarker)
	fmt.Fprintln(&b, "## End to end")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "The HTTP load of `pkg/httpload` (`go run ./pkg/cmd/loadgen` runs it alone) against %s: ", *system)
	fmt.Fprintf(&b, "at each client count, for %s, every client registers customers, adds addresses, creates orders and drives them "+
		"through their lifecycle (confirm, ship, deliver, or cancel); one command in %d of each client is one the API must refuse; "+
		"one committed command in %d of each client is followed by a read with `min_version` of the version it answered, which the "+
		"client waits for, so commands/s include those reads. Commit→read model is from the command's 2xx to that read's 200 "+
		"(command-service → event_store → relay → Kafka → projector → read model → query-service).\n\n", *duration, *invalidEvery, *readEvery)
	fmt.Fprintf(&b, "- Date: %s\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s memory, %s; load average at the start %s\n", m.cpu, m.cores, m.memory, m.kernel, m.loadavg)
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(&b, "- Command: `%s`\n\n", commandLine())

	fmt.Fprintln(&b, "| clients | commands/s | p50 | p99 | commit→read p50 | commit→read p99 | commands/s ×1 | p50 ×1 | p99 ×1 | unexpected |")
	fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	base := results[0].report
	for _, r := range results {
		rp := r.report
		fmt.Fprintf(&b, "| %d | %.1f | %s | %s | %s | %s | %.2f | %.2f | %.2f | %d |\n", r.clients, rp.CommandsPerSecond(),
			ms(rp.All.P50), ms(rp.All.P99), ms(rp.ReadLatency.P50), ms(rp.ReadLatency.P99),
			ratio(rp.CommandsPerSecond(), base.CommandsPerSecond()),
			ratio(float64(rp.All.P50), float64(base.All.P50)), ratio(float64(rp.All.P99), float64(base.All.P99)), rp.UnexpectedTotal())
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Commit→read model, share of the samples within each bound:")
	fmt.Fprintln(&b)
	fmt.Fprint(&b, "| clients | samples |")
	for _, bk := range buckets {
		fmt.Fprintf(&b, " ≤%s |", bk)
	}
	fmt.Fprintln(&b, " max |")
	fmt.Fprintln(&b, "|---:|---:|"+strings.Repeat("---:|", len(buckets)+1))
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %d |", r.clients, len(r.report.ReadSamples))
		for _, s := range shares(r.report.ReadSamples) {
			fmt.Fprintf(&b, " %.1f%% |", s)
		}
		fmt.Fprintf(&b, " %s |\n", ms(r.report.ReadLatency.Max))
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\n### %s\n\n```text\n%s```\n", clientsName(r.clients), r.table)
	}
	fmt.Fprintln(&b, endMarker)
	return replaceSection(path, b.String())
}

// commandLine is the command that produced the figures, as one would type it.
func commandLine() string {
	args := []string{"go", "run", "./pkg/cmd/e2ebench"}
	return strings.Join(append(args, os.Args[1:]...), " ")
}

// replaceSection writes section into path in place of the one between the
// markers, or at the end when there is none; the file is created with a
// title when missing.
func replaceSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n\nFigures written by the bench commands; each writes its own section.\n\n"
	}
	begin := strings.Index(doc, beginMarker)
	end := strings.Index(doc, endMarker)
	switch {
	case begin >= 0 && end > begin:
		doc = doc[:begin] + section + strings.TrimPrefix(doc[end+len(endMarker):], "\n")
	default:
		if !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		doc += section
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
