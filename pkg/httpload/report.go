package httpload

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Commit is one command the API carried out.
type Commit struct {
	AggregateType  string // TypeOrder or TypeCustomer
	AggregateID    string
	Version        int64 // the version the API answered
	IdempotencyKey string
	Kind           string // KindRegister, KindCreate, …
}

// Stats summarises a set of latencies.
type Stats struct {
	Count              int
	P50, P95, P99, Max time.Duration
}

// statsOf sorts samples in place and summarises them.
func statsOf(samples []time.Duration) Stats {
	slices.Sort(samples)
	return Stats{Count: len(samples), P50: Percentile(samples, .50), P95: Percentile(samples, .95), P99: Percentile(samples, .99), Max: Percentile(samples, 1)}
}

// Percentile is the q-quantile (0..1) of sorted samples by nearest rank;
// zero when there are none.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1 // the ceil(n·q)-th sample
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// KindReport is what one kind of command saw.
type KindReport struct {
	Kind string
	// OK counts valid commands carried out; Rejected invalid ones refused
	// as they must be; Unexpected the rest (see Report.Unexpected).
	OK, Rejected, Unexpected int
	// Latency is from the first attempt to the final answer, retries
	// included, over every command of the kind that got an answer.
	Latency Stats
}

// Sample is one unexpected outcome, kept to show what went wrong.
type Sample struct {
	Outcome string
	What    string // the command (kind, method, path) or the read
	Status  int    // 0: no answer
	Detail  string // the answer's body, or the transport error
}

// Report is what a run saw.
type Report struct {
	Clients int
	Elapsed time.Duration
	// Commands counts commands that got an outcome; Cancelled those cut
	// off by the caller's context, which are in no other figure.
	Commands, Cancelled int
	// Kinds is per kind of command, valid kinds first, in the order of an
	// order's lifecycle, then the invalid kinds by name.
	Kinds []KindReport
	// All is the latency over every command that got an answer.
	All Stats
	// Statuses counts final answers by HTTP status; 0 is no answer.
	Statuses map[int]int
	// Unexpected counts unexpected outcomes by kind (Unexpected5xx, …);
	// Samples holds the first few of them.
	Unexpected map[string]int
	Samples    []Sample
	// Rejected counts expected refusals by invalid kind and status, e.g.
	// "ship-created → 409".
	Rejected map[string]int
	// Retried counts commands sent more than once; Retries the extra
	// attempts.
	Retried, Retries int
	// ReadLatency is commit→read-model: from a command's 2xx answer to a
	// read with min_version of the version it answered returning 200.
	// ReadSamples holds every sample, sorted.
	ReadLatency Stats
	ReadSamples []time.Duration

	commits []Commit
}

// CommandsPerSecond is the rate of commands over the run.
func (r *Report) CommandsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Commands) / r.Elapsed.Seconds()
}

// UnexpectedTotal counts every unexpected outcome.
func (r *Report) UnexpectedTotal() int {
	n := 0
	for _, c := range r.Unexpected {
		n += c
	}
	return n
}

// Committed lists every command the API carried out, client by client in
// the order each sent them.
func (r *Report) Committed() []Commit { return r.commits }

// Table writes the report as tables: rate, latency by kind, answers by
// status, errors and expected rejections by kind, commit→read-model.
func (r *Report) Table(w io.Writer) {
	clients := "clients"
	if r.Clients == 1 {
		clients = "client"
	}
	fmt.Fprintf(w, "%d %s, %.1f s: %d commands, %.1f commands/s; %d retried (%d extra attempts)",
		r.Clients, clients, r.Elapsed.Seconds(), r.Commands, r.CommandsPerSecond(), r.Retried, r.Retries)
	if r.Cancelled > 0 {
		fmt.Fprintf(w, "; %d cut off by cancellation", r.Cancelled)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tcount\tok\trejected\tunexpected\tp50\tp95\tp99\tmax\t")
	row := func(name string, count, ok, rejected, unexpected int, s Stats) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", name, count, ok, rejected, unexpected, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max))
	}
	var ok, rejected, unexpected int
	for _, k := range r.Kinds {
		row(k.Kind, k.OK+k.Rejected+k.Unexpected, k.OK, k.Rejected, k.Unexpected, k.Latency)
		ok, rejected, unexpected = ok+k.OK, rejected+k.Rejected, unexpected+k.Unexpected
	}
	row("all", ok+rejected+unexpected, ok, rejected, unexpected, r.All)
	_ = tw.Flush()
	fmt.Fprintln(w)

	statuses := slices.Sorted(maps.Keys(r.Statuses))
	parts := make([]string, 0, len(statuses))
	for _, s := range statuses {
		name := fmt.Sprint(s)
		if s == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, r.Statuses[s]))
	}
	fmt.Fprintf(w, "answers by status: %s\n\n", strings.Join(parts, ", "))

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "errors (unexpected outcomes)\tcount\t")
	if len(r.Unexpected) == 0 {
		fmt.Fprintln(tw, "none\t0\t")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Unexpected)) {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Unexpected[k])
	}
	_ = tw.Flush()
	for _, s := range r.Samples {
		fmt.Fprintf(w, "  e.g. %s: %s → %d %s\n", s.Outcome, s.What, s.Status, s.Detail)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "expected rejections\tcount\t")
	if len(r.Rejected) == 0 {
		fmt.Fprintln(tw, "none\t0\t")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Rejected)) {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Rejected[k])
	}
	_ = tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "commit → read model (min_version)\tsamples\tp50\tp95\tp99\tmax\t")
	rl := r.ReadLatency
	fmt.Fprintf(tw, "command's 2xx → read answers 200\t%d\t%s\t%s\t%s\t%s\t\n", rl.Count, ms(rl.P50), ms(rl.P95), ms(rl.P99), ms(rl.Max))
	_ = tw.Flush()
}

// ms prints a duration in milliseconds with two decimals, as the other
// bench tables do.
func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// maxSamples bounds the unexpected outcomes a report keeps in full.
const maxSamples = 5

// tally is what one client saw; clients keep their own, merged at the end.
type tally struct {
	kinds      map[string]*kindTally
	statuses   map[int]int
	unexpected map[string]int
	samples    []Sample
	rejected   map[string]int
	retried    int
	retries    int
	cancelled  int
	reads      []time.Duration
	commits    []Commit
}

type kindTally struct {
	ok, rejected, unexpected int
	latencies                []time.Duration
}

func newTally() *tally {
	return &tally{kinds: map[string]*kindTally{}, statuses: map[int]int{}, unexpected: map[string]int{}, rejected: map[string]int{}}
}

func (t *tally) kind(k string) *kindTally {
	kt := t.kinds[k]
	if kt == nil {
		kt = &kindTally{}
		t.kinds[k] = kt
	}
	return kt
}

func (t *tally) unexpect(outcome, what string, a answer) {
	t.unexpected[outcome]++
	if len(t.samples) >= maxSamples {
		return
	}
	detail := strings.TrimSpace(string(a.body))
	if a.status == 0 && a.err != nil {
		detail = a.err.Error()
	}
	if len(detail) > 300 {
		detail = detail[:300] + "…"
	}
	t.samples = append(t.samples, Sample{Outcome: outcome, What: what, Status: a.status, Detail: detail})
}

// kindOrder puts the valid kinds in the order of the lifecycles.
var kindOrder = []string{KindRegister, KindAddAddress, KindCreate, KindConfirm, KindShip, KindDeliver, KindCancel}

func newReport(clients int, elapsed time.Duration, tallies []*tally) *Report {
	r := &Report{Clients: clients, Elapsed: elapsed, Statuses: map[int]int{}, Unexpected: map[string]int{}, Rejected: map[string]int{}}
	kinds := map[string]*kindTally{}
	var all []time.Duration
	for _, t := range tallies {
		for k, kt := range t.kinds {
			m := kinds[k]
			if m == nil {
				m = &kindTally{}
				kinds[k] = m
			}
			m.ok += kt.ok
			m.rejected += kt.rejected
			m.unexpected += kt.unexpected
			m.latencies = append(m.latencies, kt.latencies...)
			all = append(all, kt.latencies...)
		}
		for s, n := range t.statuses {
			r.Statuses[s] += n
		}
		for k, n := range t.unexpected {
			r.Unexpected[k] += n
		}
		for _, s := range t.samples {
			if len(r.Samples) < maxSamples {
				r.Samples = append(r.Samples, s)
			}
		}
		for k, n := range t.rejected {
			r.Rejected[k] += n
		}
		r.Retried += t.retried
		r.Retries += t.retries
		r.Cancelled += t.cancelled
		r.ReadSamples = append(r.ReadSamples, t.reads...)
		r.commits = append(r.commits, t.commits...)
	}
	names := slices.SortedFunc(maps.Keys(kinds), func(a, b string) int {
		ia, ib := slices.Index(kindOrder, a), slices.Index(kindOrder, b)
		if ia < 0 {
			ia = len(kindOrder)
		}
		if ib < 0 {
			ib = len(kindOrder)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	for _, k := range names {
		kt := kinds[k]
		r.Kinds = append(r.Kinds, KindReport{Kind: k, OK: kt.ok, Rejected: kt.rejected, Unexpected: kt.unexpected, Latency: statsOf(kt.latencies)})
		r.Commands += kt.ok + kt.rejected + kt.unexpected
	}
	r.All = statsOf(all)
	r.ReadLatency = statsOf(r.ReadSamples)
	return r
}
