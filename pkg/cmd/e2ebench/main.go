// Command e2ebench measures the whole system end to end (`make bench-e2e`,
// after `make up`): the HTTP load of pkg/httpload at 4 and 16 clients for
// the same duration each, against the running command and query APIs, with
// every n-th committed command read back with min_version to measure
// commit→read model (command-service → event_store → relay → Kafka →
// projector → read model → query-service), and its efficiency (issue 18):
// commands/s, the CPU per command of every process of the stack (Cassandra,
// Kafka and every service, from /proc/<pid>/stat), the idle CPU of each
// with no load once the stack has settled, commit→record (an event's
// occurred_at to its record's arrival at a consumer of the aggregate
// topics) and Cassandra's own per-table operation counts.
//
// By default it measures three variants in one run (-variants): a
// baseline, the system as it ships, and the system as it ships without
// the projectors' auditors. It restarts command-service and cdc-relay
// through scripts/services.sh with HINTS=0 (no commit hints: the relay
// polls recent commits at a fixed rate, the previous behaviour), measures,
// restarts them with HINTS=1 and measures again ("hints on"), then
// restarts the four projectors with AUDIT=0 and measures a third time
// ("hints on, auditors off": the auditors' share, issue 19 against issue
// 18); at the end it restarts what it changed as `make up` runs it
// (-variants running, or -baseline none, measures the running system
// once). It prints each run's table, a summary, the distribution of
// commit→read model and the efficiency tables, with a note when the machine's load average
// says other work competed; with -markdown it writes them, with the machine
// and the command, into that file between e2ebench's markers (other
// sections of the file are kept).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/httpload"
)

var (
	commandURL   = flag.String("command-url", "http://127.0.0.1:8081", "command API base URL")
	queryURL     = flag.String("query-url", "http://127.0.0.1:8082", "query API base URL")
	clientsFlag  = flag.String("clients", "4,16", "client counts to run, comma-separated; the first is the ratios' base")
	duration     = flag.Duration("duration", 20*time.Second, "length of each run")
	warmup       = flag.Duration("warmup", 5*time.Second, "unmeasured load at 4 clients before the runs of each variant")
	invalidEvery = flag.Int("invalid-every", 20, "every n-th command of a client is one the API must refuse")
	readEvery    = flag.Int("read-every", 10, "every n-th committed command of a client is read back with min_version")
	seed         = flag.Uint64("seed", 1, "seed of the command mix")
	markdown     = flag.String("markdown", "", "write the figures into this Markdown file (e.g. docs/benchmarks.md)")
	system       = flag.String("system", "the eight services of `make up` as local processes, with Apache Cassandra and Apache Kafka on loopback, all on this machine",
		"what the load ran against, for the Markdown")
	variantsFlag = flag.String("variants", "baseline,hints,noaudit", "variants to measure, comma-separated, always in this order: "+
		"baseline (command-service and cdc-relay restarted without commit hints: the relay polls recent commits at a fixed rate, the previous behaviour), "+
		"hints (restarted with them, as make up runs them), noaudit (hints on, the four projectors restarted without their auditors); "+
		"or running alone: the running system once, as it is. Services restarted otherwise than make up runs them are restarted so at the end")
	baselineFlag = flag.String("baseline", "hints-off", "hints-off: the variants of -variants; none: measure the running system once, as it is (-variants running)")
	idleFlag     = flag.Duration("idle", 60*time.Second, "idle window of each variant: CPU of every process with no load, once the stack has settled; 0 skips it")
	settleMin    = flag.Duration("settle-min", 30*time.Second, "shortest wait before the idle window (the relay's polls back off after its restart)")
	settleMax    = flag.Duration("settle-max", 3*time.Minute, "longest wait, before the idle window, for the stack's CPU to stop falling (Cassandra's compactions after a start or a load)")
	services     = flag.String("services-script", "scripts/services.sh", "the script that restarts the services (its restart command, with HINTS or AUDIT set to 0 or 1)")
	runDir       = flag.String("run-dir", ".run", "where scripts/stack.sh and scripts/services.sh keep their pid files")
	brokers      = flag.String("kafka", "127.0.0.1:9092", "Kafka brokers, comma-separated: commit→record is read from the aggregate topics")
	prefix       = flag.String("topic-prefix", "orderstream", "the relay's relay.topic_prefix")
	cqlHosts     = flag.String("cql", "127.0.0.1:9042", "Cassandra hosts, comma-separated: its per-table operation counts")
	keyspace     = flag.String("keyspace", "orderstream", "the system's keyspace")
	profileDir   = flag.String("profile", "", "take a CPU profile of every Go service during each variant's last run (admin.pprof, on in `make up`) into this directory, with each one's top functions")
	bareFlag     = flag.Bool("bare", true, "before the variants, measure the idle window of Cassandra and Kafka alone, every service stopped (scripts/services.sh stop, then start): the floor the idle goal is set against; needs -idle")
	adminToken   = flag.String("admin-token", "orderstream-local-admin-token", "the services' admin bearer token (scripts/services.sh ADMIN_TOKEN), for -profile")
	quietLoad    = flag.Float64("quiet-load", 1.0, "1-minute load average at the start above which the figures are marked as taken on a busy machine")
	quietOther   = flag.Float64("quiet-other", 0.1, "CPU of processes outside the stack during an idle window, in cores, above which the figures are marked as taken on a busy machine")
	settleStep   = 10 * time.Second
)

// stackServices are the services of `make up` (scripts/services.sh), whose
// CPU the efficiency tables show beside Cassandra's and Kafka's.
var stackServices = []string{
	"command-service", "query-service", "dlq-service", "cdc-relay",
	"projector-order-read-model", "projector-orders-by-customer", "projector-orders-by-status", "projector-customer-read-model",
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

// result is one run at one client count.
type result struct {
	clients int
	report  *httpload.Report
	table   string
	use     cpuUse          // CPU of every process during the run
	records []time.Duration // commit→record, sorted
	counts  tableCounts     // Cassandra's operations during the run
}

// recordStats summarises commit→record.
func (r result) recordStats() httpload.Stats {
	if len(r.records) == 0 {
		return httpload.Stats{}
	}
	return httpload.Stats{Count: len(r.records), P50: httpload.Percentile(r.records, 0.50), P95: httpload.Percentile(r.records, 0.95),
		P99: httpload.Percentile(r.records, 0.99), Max: r.records[len(r.records)-1]}
}

// cpuPerCommand is the CPU time of the process (all processes for "")
// per command of the run.
func (r result) cpuPerCommand(name string) time.Duration {
	if r.report.Commands == 0 {
		return 0
	}
	d := r.use.total()
	if name != "" {
		d = r.use.cpu[name]
	}
	return d / time.Duration(r.report.Commands)
}

// variant is one configuration of the system measured: the baseline, the
// system as it ships, or it without auditors.
type variant struct {
	name  string
	hints string // HINTS for services.sh restart of command-service and cdc-relay; "" leaves them as they run
	audit string // AUDIT for services.sh restart of the projectors; "" leaves them as they run
	idle  *idleResult
	runs  []result
	// load averages (1 minute) as the variant began and ended
	loadStart, loadEnd float64
}

// tag names the variant in file names.
func (v *variant) tag() string {
	switch {
	case v.hints == "0":
		return variantBaseline
	case v.audit == "0":
		return variantNoAudit
	case v.hints == "1":
		return variantHints
	}
	return variantRunning
}

// idleResult is the idle window of a variant.
type idleResult struct {
	use     cpuUse
	counts  tableCounts
	settled time.Duration // waited for the CPU to stop falling
	// other is the CPU the machine spent outside the stack's processes
	// during the window (other work, and this bench).
	other time.Duration
}

// The variants -variants names, in the order they are measured.
const (
	variantBaseline = "baseline"
	variantHints    = "hints"
	variantNoAudit  = "noaudit"
	variantRunning  = "running"
)

func variants() ([]*variant, error) {
	switch *baselineFlag {
	case "hints-off":
		return parseVariants(*variantsFlag)
	case "none":
		return parseVariants(variantRunning)
	}
	return nil, fmt.Errorf("-baseline: want hints-off or none, got %q", *baselineFlag)
}

// parseVariants builds the variants a -variants list names, in the order
// baseline, hints, noaudit whatever the list's order. A variant sets only
// what it needs: "hints on, auditors off" restarts command-service and
// cdc-relay with hints only when the baseline left them without.
func parseVariants(s string) ([]*variant, error) {
	want := map[string]bool{}
	for _, f := range splitList(s) {
		switch f {
		case variantBaseline, variantHints, variantNoAudit, variantRunning:
			want[f] = true
		default:
			return nil, fmt.Errorf("-variants: want baseline, hints, noaudit or running, comma-separated, got %q", s)
		}
	}
	if want[variantRunning] {
		if len(want) > 1 {
			return nil, fmt.Errorf("-variants: running measures the system as it is, alone; got %q", s)
		}
		return []*variant{{name: "as running"}}, nil
	}
	var vs []*variant
	if want[variantBaseline] {
		vs = append(vs, &variant{name: "baseline: hints off, fixed-rate poll", hints: "0"})
	}
	if want[variantHints] {
		vs = append(vs, &variant{name: "hints on", hints: "1"})
	}
	if want[variantNoAudit] {
		v := &variant{name: "hints on, auditors off", audit: "0"}
		if !want[variantHints] {
			v.hints = "1" // the system may run without them (a baseline just before, or an interrupted run)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("-variants: name at least one variant, got %q", s)
	}
	return vs, nil
}

// The services each switch of services.sh restarts.
var (
	hintServices      = []string{"command-service", "cdc-relay"}
	projectorServices = []string{"projector-order-read-model", "projector-orders-by-customer", "projector-orders-by-status", "projector-customer-read-model"}
)

// restore is what to restart, after the variants, to leave the system as
// `make up` runs it (HINTS=1, AUDIT=1): the services of each switch that a
// variant set otherwise.
func restore(vs []*variant) (hints, audit bool) {
	for _, v := range vs {
		if v.hints != "" {
			hints = v.hints != "1"
		}
		if v.audit != "" {
			audit = v.audit != "1"
		}
	}
	return hints, audit
}

func run() error {
	clients, err := parseClients(*clientsFlag)
	if err != nil {
		return err
	}
	vs, err := variants()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := preflight(ctx); err != nil {
		return err
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
	}
	counter, err := newCQLCounter(splitList(*cqlHosts), *keyspace)
	if err != nil {
		return err
	}
	defer counter.close()
	m := describeMachine()
	started := time.Now().UTC()
	if *bareFlag && *idleFlag > 0 {
		if bare, err = measureBare(ctx, counter); err != nil {
			return fmt.Errorf("bare servers: %w", err)
		}
	}

	for i, v := range vs {
		err := measure(ctx, v, clients, counter)
		if err != nil || i == len(vs)-1 {
			err = errors.Join(err, leaveAsUp(ctx, stop, vs[:i+1]))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}

	for _, v := range vs {
		fmt.Printf("\n==== %s ====\n", v.name)
		for _, r := range v.runs {
			fmt.Printf("\n== %s ==\n%s", clientsName(r.clients), r.table)
		}
		fmt.Println()
		summary(os.Stdout, v.runs)
		fmt.Println()
		distribution(os.Stdout, v.runs)
	}
	fmt.Println()
	efficiencyText(os.Stdout, vs)

	if *markdown != "" {
		if err := writeMarkdown(*markdown, m, started, vs); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *markdown)
	}
	var unexpected int
	for _, v := range vs {
		for _, r := range v.runs {
			unexpected += r.report.UnexpectedTotal()
		}
	}
	if unexpected > 0 {
		return fmt.Errorf("%d unexpected outcomes (see the tables)", unexpected)
	}
	return nil
}

// measure restarts the services of a variant when it has a configuration
// of its own, waits for the stack to settle, takes its idle window, warms
// up and runs the load at each client count.
func measure(ctx context.Context, v *variant, clients []int, counter *cqlCounter) error {
	v.loadStart = loadAverage()
	if v.hints != "" || v.audit != "" {
		if v.hints != "" {
			if err := restartServices(ctx, v.name, "HINTS="+v.hints, hintServices); err != nil {
				return err
			}
		}
		if v.audit != "" {
			if err := restartServices(ctx, v.name, "AUDIT="+v.audit, projectorServices); err != nil {
				return err
			}
		}
		if err := preflight(ctx); err != nil {
			return err
		}
	}
	procs, err := stackProcs(*runDir, stackServices)
	if err != nil {
		return fmt.Errorf("finding the stack's processes (is `make up` running from this directory?): %w", err)
	}
	if *idleFlag > 0 {
		if v.idle, err = measureIdle(ctx, procs, counter); err != nil {
			return err
		}
	}
	if *warmup > 0 {
		fmt.Fprintf(os.Stderr, "%s: warm-up, 4 clients for %s\n", v.name, *warmup)
		if _, err := httpload.Run(ctx, config(4, *warmup, nil)); err != nil {
			return err
		}
	}
	for i, n := range clients {
		fmt.Fprintf(os.Stderr, "%s: %d clients for %s\n", v.name, n, *duration)
		wait := func() error { return nil }
		if *profileDir != "" && i == len(clients)-1 {
			// The run but its last two seconds (a profile must end before it).
			seconds := max(int(*duration/time.Second)-2, 1)
			wait = profiles(ctx, *profileDir, fmt.Sprintf("%s-%dcl", v.tag(), n), seconds)
		}
		r, err := loadRun(ctx, n, procs, counter)
		if err := errors.Join(err, wait()); err != nil {
			return err
		}
		v.runs = append(v.runs, r)
	}
	v.loadEnd = loadAverage()
	return nil
}

// loadRun runs the load at n clients, with the CPU of every process, the
// commit→record watch and Cassandra's counters around it.
func loadRun(ctx context.Context, n int, procs []proc, counter *cqlCounter) (result, error) {
	watch, err := watchRecords(splitList(*brokers), *prefix)
	if err != nil {
		return result{}, err
	}
	countsBefore, err := counter.read()
	if err != nil {
		watch.stop()
		return result{}, err
	}
	before, err := sampleCPU(procs)
	if err != nil {
		watch.stop()
		return result{}, err
	}
	rep, err := httpload.Run(ctx, config(n, *duration, os.Stderr))
	if err != nil {
		watch.stop()
		return result{}, err
	}
	after, err := sampleCPU(procs)
	if err != nil {
		watch.stop()
		return result{}, err
	}
	countsAfter, err := counter.read()
	if err != nil {
		watch.stop()
		return result{}, err
	}
	// The last commits' records are on their way.
	watch.drain(time.Second, 15*time.Second)
	records, bad := watch.stop()
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d records of the aggregate topics could not be decoded\n", bad)
	}
	var b strings.Builder
	rep.Table(&b)
	return result{clients: n, report: rep, table: b.String(), use: before.until(after), records: records, counts: countsAfter.since(countsBefore)}, nil
}

// bare is the idle window of Cassandra and Kafka alone (-bare), nil when
// not measured: the floor of every variant's idle.
var bare *idleResult

// measureBare stops every service, takes the idle window of Cassandra and
// Kafka alone, and starts the services again (as `make up` runs them).
func measureBare(ctx context.Context, counter *cqlCounter) (_ *idleResult, err error) {
	fmt.Fprintln(os.Stderr, "bare servers: scripts/services.sh stop")
	if err := servicesScript(ctx, "", "stop"); err != nil {
		return nil, err
	}
	defer func() {
		if ctx.Err() != nil {
			ctx = context.WithoutCancel(ctx)
		}
		fmt.Fprintln(os.Stderr, "bare servers measured: scripts/services.sh start")
		err = errors.Join(err, servicesScript(ctx, "", "start"), preflight(ctx))
	}()
	procs, err := stackProcs(*runDir, nil)
	if err != nil {
		return nil, err
	}
	return measureIdle(ctx, procs, counter)
}

// servicesScript runs the services script with args (stop, start,
// restart names…), with env (HINTS=… or AUDIT=…) when not "", and waits
// for it (start and restart wait until the services are ready).
func servicesScript(ctx context.Context, env string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *services, args...)
	cmd.Env = os.Environ()
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s (%s): %w", *services, strings.Join(args, " "), env, err)
	}
	return nil
}

// restartServices restarts names through the services script with env
// (HINTS=… or AUDIT=…) set, and waits until they are ready.
func restartServices(ctx context.Context, why, env string, names []string) error {
	fmt.Fprintf(os.Stderr, "%s: restarting %s with %s\n", why, strings.Join(names, ", "), env)
	return servicesScript(ctx, env, append([]string{"restart"}, names...)...)
}

// leaveAsUp restarts, once the last variant is measured or one failed,
// the services the variants measured so far left otherwise than `make up`
// runs them. After an interrupt (ctx ended) too: stopSignals lets a second
// one end the bench at once.
func leaveAsUp(ctx context.Context, stopSignals func(), done []*variant) error {
	hints, audit := restore(done)
	if !hints && !audit {
		return nil
	}
	if ctx.Err() != nil {
		stopSignals()
		ctx = context.WithoutCancel(ctx)
	}
	var errs []error
	if hints {
		errs = append(errs, restartServices(ctx, "leaving the system as `make up` runs it", "HINTS=1", hintServices))
	}
	if audit {
		errs = append(errs, restartServices(ctx, "leaving the system as `make up` runs it", "AUDIT=1", projectorServices))
	}
	return errors.Join(errs...)
}

// measureIdle waits until the stack's CPU stops falling (windows of
// settleStep, at most settleMax), then measures every process and
// Cassandra's counters over the idle window.
func measureIdle(ctx context.Context, procs []proc, counter *cqlCounter) (*idleResult, error) {
	fmt.Fprintf(os.Stderr, "settling: CPU in windows of %s until it stops falling (at least %s, at most %s)\n", settleStep, *settleMin, *settleMax)
	began := time.Now()
	prev, err := sampleCPU(procs)
	if err != nil {
		return nil, err
	}
	var last time.Duration = -1
	for time.Since(began) < *settleMax {
		if err := sleep(ctx, settleStep); err != nil {
			return nil, err
		}
		cur, err := sampleCPU(procs)
		if err != nil {
			return nil, err
		}
		used := prev.until(cur).total()
		prev = cur
		fmt.Fprintf(os.Stderr, "  %.3f cores\n", float64(used)/float64(settleStep))
		// Settled: this window used no less than 90 % of the previous one,
		// or next to nothing.
		if last >= 0 && time.Since(began) >= *settleMin && (used*10 >= last*9 || used < settleStep/200) {
			break
		}
		last = used
	}
	settled := time.Since(began)
	fmt.Fprintf(os.Stderr, "idle window: %s\n", *idleFlag)
	countsBefore, err := counter.read()
	if err != nil {
		return nil, err
	}
	busyBefore, err := machineBusy()
	if err != nil {
		return nil, err
	}
	before, err := sampleCPU(procs)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, *idleFlag); err != nil {
		return nil, err
	}
	after, err := sampleCPU(procs)
	if err != nil {
		return nil, err
	}
	busyAfter, err := machineBusy()
	if err != nil {
		return nil, err
	}
	countsAfter, err := counter.read()
	if err != nil {
		return nil, err
	}
	use := before.until(after)
	return &idleResult{use: use, counts: countsAfter.since(countsBefore), settled: settled, other: max(busyAfter-busyBefore-use.total(), 0)}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if !backoff.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
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

func writeMarkdown(path string, m machine, started time.Time, vs []*variant) error {
	var b strings.Builder
	fmt.Fprintln(&b, beginMarker)
	fmt.Fprintln(&b, "## End to end")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "The HTTP load of `pkg/httpload` (`go run ./pkg/cmd/loadgen` runs it alone) against %s: ", *system)
	fmt.Fprintf(&b, "at each client count, for %s, every client registers customers, adds addresses, creates orders and drives them "+
		"through their lifecycle (confirm, ship, deliver, or cancel); one command in %d of each client is one the API must refuse; "+
		"one committed command in %d of each client is followed by a read with `min_version` of the version it answered, which the "+
		"client waits for, so commands/s include those reads. Commit→read model is from the command's 2xx to that read's 200 "+
		"(command-service → event_store → relay → Kafka → projector → read model → query-service); commit→record is from an event's "+
		"`occurred_at` (stamped by the command-service as it decides, just before its commit) to its record's arrival at a consumer "+
		"of the aggregate topics. CPU is each process's user and system time from `/proc/<pid>/stat` over the run (Cassandra, Kafka "+
		"and every service; not the load generator), divided by the commands of the run. Cassandra's operations are its own per-table "+
		"counters (`system_views.local_read_latency`, `local_write_latency`, `local_scan_latency`): those of the system's keyspace "+
		"are the system's own, while `system.paxos` (LWTs) and `system.batches` (logged batches) count every keyspace, so on a "+
		"shared Cassandra they include other clients' work.\n\n", *duration, *invalidEvery, *readEvery)
	if len(vs) > 1 {
		fmt.Fprint(&b, variantsText(vs)+" ")
	}
	if *idleFlag > 0 {
		fmt.Fprintf(&b, "Each variant first waits for the stack's CPU to stop falling (windows of %s, at least %s, at most %s: Cassandra's "+
			"compactions after a start or a load), then measures %s with no load at all (idle).", settleStep, *settleMin, *settleMax, *idleFlag)
	}
	if bare != nil {
		fmt.Fprint(&b, " Before the variants, **bare servers** measures the same idle window of Cassandra and Kafka alone, every service "+
			"stopped (`scripts/services.sh stop`, then `start`): the floor under every variant's idle, which no change to the services can lower.")
	}
	fmt.Fprint(&b, "\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s memory, %s; load average at the start %s\n", m.cpu, m.cores, m.memory, m.kernel, m.loadavg)
	if bare != nil {
		fmt.Fprintf(&b, "- bare servers: settled after %s; while idle, processes outside the stack used %.3f of a core\n",
			bare.settled.Round(time.Second), bare.use.cores(bare.other))
	}
	for _, v := range vs {
		fmt.Fprintf(&b, "- %s: 1-minute load average %.2f at its start, %.2f at its end", v.name, v.loadStart, v.loadEnd)
		if v.idle != nil {
			fmt.Fprintf(&b, "; settled after %s; while idle, processes outside the stack used %.3f of a core",
				v.idle.settled.Round(time.Second), v.idle.use.cores(v.idle.other))
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(&b, "- Command: `%s`\n\n", commandLine())
	if note := busy(vs); note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}

	efficiencyGrid(vs).markdown(&b)
	fmt.Fprintln(&b)
	if gs := goalLines(vs); len(gs) > 0 {
		fmt.Fprintf(&b, "Goals of issue 18, for %s (as deployed)", judged(vs).name)
		if off := withoutAuditors(vs); off != nil {
			fmt.Fprintf(&b, ", each followed by the same goal for %s", off.name)
		}
		fmt.Fprint(&b, ":\n\n")
		for _, g := range gs {
			what := g.what
			if g.other != "" {
				what += " (" + g.other + ")"
			}
			fmt.Fprintf(&b, "- %s %s: %s\n", map[bool]string{true: "met", false: "**missed**"}[g.ok], what, g.got)
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b, "### CPU per command, by process (ms)")
	fmt.Fprintln(&b)
	cpuGrid(vs).markdown(&b)
	if vs[0].idle != nil {
		fmt.Fprintf(&b, "\n### Idle: share of a core over %s\n\n", *idleFlag)
		idleGrid(vs).markdown(&b)
		fmt.Fprintln(&b, "\nCassandra's operations per minute while idle:")
		fmt.Fprintln(&b)
		idleCountsGrid(vs).markdown(&b)
	}
	fmt.Fprintln(&b, "\n### Cassandra's operations per command")
	fmt.Fprintln(&b)
	countsGrid(vs).markdown(&b)

	for _, v := range vs {
		fmt.Fprintf(&b, "\n### %s\n\n", v.name)
		fmt.Fprintln(&b, "| clients | commands/s | p50 | p99 | commit→read p50 | commit→read p99 | commands/s ×first | p50 ×first | p99 ×first | unexpected |")
		fmt.Fprintln(&b, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		base := v.runs[0].report
		for _, r := range v.runs {
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
		for _, r := range v.runs {
			fmt.Fprintf(&b, "| %d | %d |", r.clients, len(r.report.ReadSamples))
			for _, s := range shares(r.report.ReadSamples) {
				fmt.Fprintf(&b, " %.1f%% |", s)
			}
			fmt.Fprintf(&b, " %s |\n", ms(r.report.ReadLatency.Max))
		}
		for _, r := range v.runs {
			fmt.Fprintf(&b, "\n<details><summary>%s, %s</summary>\n\n```text\n%s```\n\n</details>\n", v.name, clientsName(r.clients), r.table)
		}
	}
	fmt.Fprintln(&b, endMarker)
	return replaceSection(path, b.String())
}

// variantsText says, for the Markdown, how each variant was set up.
func variantsText(vs []*variant) string {
	count := map[int]string{2: "Two", 3: "Three"}[len(vs)]
	if count == "" {
		count = strconv.Itoa(len(vs))
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		var restarts []string
		if v.hints == "0" {
			restarts = append(restarts, "restarts command-service and cdc-relay without commit hints "+
				"(`HINTS=0 scripts/services.sh restart command-service cdc-relay`: the relay reads recent commits "+
				"every `relay.recent_interval`, the behaviour before commit hints)")
		}
		if v.hints == "1" {
			restarts = append(restarts, "restarts command-service and cdc-relay as `make up` runs them, with commit hints")
		}
		if v.audit == "0" {
			share := ""
			if on := judged(vs); on != v && on.hints == "1" && on.audit == "" {
				share = "; beside **" + on.name + "**, the auditors' share"
			}
			restarts = append(restarts, "restarts the four projectors without their auditors (`AUDIT=0 scripts/services.sh restart "+
				strings.Join(projectorServices, " ")+"`: `projector.audit.enabled=false`"+share+")")
		}
		if len(restarts) == 0 {
			restarts = append(restarts, "measures the system as it runs")
		}
		parts[i] = fmt.Sprintf("**%s** %s", v.name, strings.Join(restarts, " and "))
	}
	text := fmt.Sprintf("%s variants in the same run, one after the other: %s.", count, strings.Join(parts, "; then "))
	if hints, audit := restore(vs); hints || audit {
		text += " At the end, what a variant changed is restarted as `make up` runs it (commit hints and auditors on)."
	}
	return text
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
