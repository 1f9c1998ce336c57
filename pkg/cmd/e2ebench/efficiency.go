package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// grid is a table built once and written as text or Markdown: the first
// column is left-aligned, the others right-aligned.
type grid struct {
	head []string
	rows [][]string
}

func (g *grid) add(cells ...string) { g.rows = append(g.rows, cells) }

func (g *grid) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{g.head}, g.rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	_ = tw.Flush()
}

func (g *grid) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "| %s |\n|---|%s\n", strings.Join(g.head, " | "), strings.Repeat("---:|", len(g.head)-1))
	for _, r := range g.rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(r, " | "))
	}
}

// runLabel names a run in the columns of the per-process tables.
func runLabel(v *variant, r result, several bool) string {
	if !several {
		return clientsName(r.clients)
	}
	return fmt.Sprintf("%s, %d cl.", v.short(), r.clients)
}

// short is the variant's name for narrow columns.
func (v *variant) short() string {
	switch {
	case v.audit == "0":
		return "no audit"
	case v.hints == "0":
		return "baseline"
	case v.hints == "1":
		return "hints"
	}
	return v.name
}

func msf(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// efficiencyGrid: per variant and client count, rate, CPU per command of
// all processes and the two end-to-end latencies.
func efficiencyGrid(vs []*variant) *grid {
	g := &grid{head: []string{"system", "clients", "commands/s", "CPU ms per command", "commit→record p50", "commit→record p99",
		"commit→read p50", "commit→read p99", "records", "unexpected"}}
	for _, v := range vs {
		for _, r := range v.runs {
			rs := r.recordStats()
			g.add(v.name, fmt.Sprint(r.clients), fmt.Sprintf("%.1f", r.report.CommandsPerSecond()), msf(r.cpuPerCommand("")),
				ms(rs.P50), ms(rs.P99), ms(r.report.ReadLatency.P50), ms(r.report.ReadLatency.P99),
				fmt.Sprint(rs.Count), fmt.Sprint(r.report.UnexpectedTotal()))
		}
	}
	return g
}

// processNames are the processes in table order.
func processNames() []string { return append([]string{"cassandra", "kafka"}, stackServices...) }

// cpuGrid: CPU ms per command of each process, one column per run.
func cpuGrid(vs []*variant) *grid {
	g := &grid{head: []string{"process"}}
	for _, v := range vs {
		for _, r := range v.runs {
			g.head = append(g.head, runLabel(v, r, len(vs) > 1))
		}
	}
	for _, name := range append(processNames(), "") {
		label := name
		if name == "" {
			label = "**all**"
		}
		row := []string{label}
		for _, v := range vs {
			for _, r := range v.runs {
				row = append(row, msf(r.cpuPerCommand(name)))
			}
		}
		g.add(row...)
	}
	return g
}

// idleGrid: share of a core each process used in the idle window, one
// column per variant.
func idleGrid(vs []*variant) *grid {
	g := &grid{head: []string{"process"}}
	if bare != nil {
		// The floor, as a variant of its own in the first column.
		vs = append([]*variant{{name: "bare servers", idle: bare}}, vs...)
	}
	for _, v := range vs {
		if v.idle != nil {
			g.head = append(g.head, v.short())
		}
	}
	for _, name := range append(processNames(), "") {
		label := name
		if name == "" {
			label = "**all**"
		}
		row := []string{label}
		for _, v := range vs {
			if v.idle == nil {
				continue
			}
			d := v.idle.use.total()
			if name != "" {
				d = v.idle.use.cpu[name]
			}
			row = append(row, fmt.Sprintf("%.4f", v.idle.use.cores(d)))
		}
		g.add(row...)
	}
	row := []string{"other processes (not in all)"}
	for _, v := range vs {
		if v.idle != nil {
			row = append(row, fmt.Sprintf("%.4f", v.idle.use.cores(v.idle.other)))
		}
	}
	g.add(row...)
	return g
}

// idleCountsGrid: Cassandra's operations per minute in the idle window,
// the busiest tables of any variant.
func idleCountsGrid(vs []*variant) *grid {
	g := &grid{head: []string{"operation"}}
	if bare != nil {
		vs = append([]*variant{{name: "bare servers", idle: bare}}, vs...)
	}
	union := tableCounts{}
	for _, v := range vs {
		if v.idle == nil {
			continue
		}
		g.head = append(g.head, v.short()+", per minute")
		for k, n := range v.idle.counts {
			union[k] += n
		}
	}
	for _, k := range union.top(12) {
		row := []string{shortTable(k, *keyspace)}
		for _, v := range vs {
			if v.idle == nil {
				continue
			}
			row = append(row, fmt.Sprintf("%.1f", float64(v.idle.counts[k])/v.idle.use.elapsed.Minutes()))
		}
		g.add(row...)
	}
	return g
}

// countsGrid: Cassandra's operations per command, one column per run, the
// busiest tables of any run.
func countsGrid(vs []*variant) *grid {
	g := &grid{head: []string{"operation"}}
	union := tableCounts{}
	for _, v := range vs {
		for _, r := range v.runs {
			g.head = append(g.head, runLabel(v, r, len(vs) > 1))
			for k, n := range r.counts {
				union[k] += n
			}
		}
	}
	for _, k := range union.top(16) {
		row := []string{shortTable(k, *keyspace)}
		for _, v := range vs {
			for _, r := range v.runs {
				per := 0.0
				if r.report.Commands > 0 {
					per = float64(r.counts[k]) / float64(r.report.Commands)
				}
				row = append(row, fmt.Sprintf("%.2f", per))
			}
		}
		g.add(row...)
	}
	return g
}

// goal is one target of issue 18.
type goal struct {
	what string
	ok   bool
	got  string
}

// judged is the variant the goals of issue 18 are judged on: the system
// as it ships ("hints on", auditors on), else the last one measured.
func judged(vs []*variant) *variant {
	for _, v := range vs {
		if v.hints == "1" && v.audit == "" {
			return v
		}
	}
	return vs[len(vs)-1]
}

// withoutAuditors is the variant measured with the auditors off, nil when
// none was.
func withoutAuditors(vs []*variant) *variant {
	for _, v := range vs {
		if v.audit == "0" && v != judged(vs) {
			return v
		}
	}
	return nil
}

// goals judges the system as it ships against the targets of issue 18; a
// figure the run did not take is left out.
func goals(vs []*variant) []goal { return goalsOf(judged(vs)) }

// goalLine is one line of the goals: a goal of the judged variant, or the
// same goal for the variant without auditors (other names it).
type goalLine struct {
	goal
	other string
}

// goalLines are the goals of the judged variant, each followed by the
// same goal for the variant without auditors, when one was measured.
func goalLines(vs []*variant) []goalLine {
	off := withoutAuditors(vs)
	var offGoals map[string]goal
	if off != nil {
		offGoals = map[string]goal{}
		for _, g := range goalsOf(off) {
			offGoals[g.what] = g
		}
	}
	var out []goalLine
	for _, g := range goals(vs) {
		out = append(out, goalLine{goal: g})
		if og, ok := offGoals[g.what]; ok {
			out = append(out, goalLine{goal: og, other: off.name})
		}
	}
	return out
}

// goalsOf judges v against the targets of issue 18.
func goalsOf(v *variant) []goal {
	var out []goal
	if v.idle != nil {
		c := v.idle.use.cores(v.idle.use.total())
		out = append(out, goal{"idle: all processes ≤ 0.03 core", c <= 0.03, fmt.Sprintf("%.4f", c)})
		if bare != nil {
			// What the system adds to Cassandra and Kafka idling alone.
			f := bare.use.cores(bare.use.total())
			out = append(out, goal{"idle above the bare servers ≤ 0.03 core", c-f <= 0.03, fmt.Sprintf("%.4f (bare servers %.4f)", c-f, f)})
		}
	}
	for _, r := range v.runs {
		rs := r.recordStats()
		if r.clients == 16 {
			d := r.cpuPerCommand("")
			out = append(out, goal{"16 clients: CPU per command ≤ 3.9 ms", d <= 3900*time.Microsecond, msf(d) + " ms"},
				goal{"16 clients: commit→read p99 ≤ 250 ms", r.report.ReadLatency.P99 <= 250*time.Millisecond, ms(r.report.ReadLatency.P99)})
		}
		if r.clients == 4 {
			out = append(out, goal{"4 clients: commit→read p50 ≤ 25 ms", r.report.ReadLatency.P50 <= 25*time.Millisecond, ms(r.report.ReadLatency.P50)},
				goal{"4 clients: commit→read p99 ≤ 100 ms", r.report.ReadLatency.P99 <= 100*time.Millisecond, ms(r.report.ReadLatency.P99)},
				goal{"4 clients: commit→record p50 ≤ 15 ms", rs.Count > 0 && rs.P50 <= 15*time.Millisecond, ms(rs.P50)})
		}
	}
	return out
}

// busy says whether the bench ran on a machine busy with other work, as a
// note for the tables; "" when it was quiet. The judges: the 1-minute load
// average as the first variant began (the bench's own load raises it
// later), and the CPU of processes outside the stack in each idle window.
func busy(vs []*variant) string {
	var high []string
	if l := vs[0].loadStart; l > *quietLoad {
		high = append(high, fmt.Sprintf("1-minute load average %.2f at the start (above %.2f)", l, *quietLoad))
	}
	for _, v := range vs {
		if v.idle == nil {
			continue
		}
		if c := v.idle.use.cores(v.idle.other); c > *quietOther {
			high = append(high, fmt.Sprintf("%.2f of a core used outside the stack in the idle window of %s (above %.2f)", c, v.name, *quietOther))
		}
	}
	if len(high) == 0 {
		return ""
	}
	return fmt.Sprintf("**Note: the machine was busy with other work** (%s); the load competed with it and "+
		"Cassandra and Kafka may have served other clients too, so these figures are not comparable with a quiet machine's.",
		strings.Join(high, "; "))
}

// efficiencyText writes the efficiency tables as text.
func efficiencyText(w io.Writer, vs []*variant) {
	if note := busy(vs); note != "" {
		fmt.Fprintln(w, strings.ReplaceAll(note, "**", ""))
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "efficiency")
	efficiencyGrid(vs).text(w)
	fmt.Fprintln(w, "\nCPU ms per command, by process")
	cpuGrid(vs).text(w)
	if vs[0].idle != nil {
		fmt.Fprintf(w, "\nidle: share of a core over %s\n", *idleFlag)
		idleGrid(vs).text(w)
		fmt.Fprintln(w, "\nidle: Cassandra operations per minute")
		idleCountsGrid(vs).text(w)
	}
	fmt.Fprintln(w, "\nCassandra operations per command")
	countsGrid(vs).text(w)
	if gs := goalLines(vs); len(gs) > 0 {
		fmt.Fprintf(w, "\ngoals of issue 18 (%s)\n", judged(vs).name)
		for _, g := range gs {
			what := g.what
			if g.other != "" {
				what = "  (" + g.other + ")"
			}
			fmt.Fprintf(w, "  %-4s %-40s %s\n", map[bool]string{true: "met", false: "MISS"}[g.ok], what, g.got)
		}
	}
}
