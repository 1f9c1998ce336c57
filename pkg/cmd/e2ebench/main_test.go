package main

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/httpload"
)

// The section replaces the previous one and keeps what is around it.
func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	section := func(s string) string { return beginMarker + "\n" + s + "\n" + endMarker + "\n" }

	require.NoError(t, replaceSection(path, section("first")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\nFigures written by the bench commands; each writes its own section.\n\n"+section("first"), string(got))

	others := "# Benchmarks\n\n## Store\n\nfigures\n\n" + section("old") + "\n## Relay\n\nmore\n"
	require.NoError(t, os.WriteFile(path, []byte(others), 0o644))
	require.NoError(t, replaceSection(path, section("new")))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n## Store\n\nfigures\n\n"+section("new")+"\n## Relay\n\nmore\n", string(got))

	require.NoError(t, os.WriteFile(path, []byte("# Benchmarks\n\n## Store\n"), 0o644))
	require.NoError(t, replaceSection(path, section("appended")))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "# Benchmarks\n\n## Store\n\n"+section("appended"), string(got))
}

func TestShares(t *testing.T) {
	samples := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 3 * time.Second}
	require.Equal(t, []float64{50, 50, 75, 75, 75, 75, 75, 75, 100}, shares(samples))
	require.Equal(t, make([]float64, len(buckets)), shares(nil))
}

func TestParseClients(t *testing.T) {
	got, err := parseClients("1, 16,64")
	require.NoError(t, err)
	require.Equal(t, []int{1, 16, 64}, got)
	for _, bad := range []string{"", "0", "1,x", "-4"} {
		_, err := parseClients(bad)
		require.Error(t, err, bad)
	}
}

// utime and stime are fields 14 and 15, counted after the command name,
// which may hold spaces and parentheses.
func TestParseStat(t *testing.T) {
	stat := "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 60 0 123 456 789"
	got, err := parseStat(stat)
	require.NoError(t, err)
	require.Equal(t, 3250*time.Millisecond, got)
	for _, bad := range []string{"", "4242 (java S 1", "4242 (java) S 1 2 3", "4242 (java) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 75"} {
		_, err := parseStat(bad)
		require.Error(t, err, bad)
	}
}

// The pid files of scripts/stack.sh and scripts/services.sh name the
// processes; a missing or dead one is an error, not a silent gap.
func TestStackProcs(t *testing.T) {
	dir := t.TempDir()
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, p := range []string{"stack/cassandra/cassandra.pid", "stack/kafka/kafka.pid", "services/svc.pid"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), self, 0o644))
	}
	procs, err := stackProcs(dir, []string{"svc"})
	require.NoError(t, err)
	require.Equal(t, []proc{{"cassandra", os.Getpid()}, {"kafka", os.Getpid()}, {"svc", os.Getpid()}}, procs)

	_, err = stackProcs(dir, []string{"svc", "missing"})
	require.ErrorContains(t, err, "missing")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "services/svc.pid"), []byte("999999999"), 0o644))
	_, err = stackProcs(dir, []string{"svc"})
	require.ErrorContains(t, err, "svc (pid 999999999")
}

func TestCPUUse(t *testing.T) {
	at := time.Now()
	a := cpuSample{at: at, cpu: map[string]time.Duration{"x": time.Second, "y": 2 * time.Second}}
	b := cpuSample{at: at.Add(10 * time.Second), cpu: map[string]time.Duration{"x": 3 * time.Second, "y": 2500 * time.Millisecond}}
	u := a.until(b)
	require.Equal(t, 2*time.Second, u.cpu["x"])
	require.Equal(t, 2500*time.Millisecond, u.total())
	require.InDelta(t, 0.25, u.cores(u.total()), 1e-9)

	r := result{report: &httpload.Report{Commands: 500}, use: u}
	require.Equal(t, 5*time.Millisecond, r.cpuPerCommand(""))
	require.Equal(t, 4*time.Millisecond, r.cpuPerCommand("x"))
}

func TestTableCounts(t *testing.T) {
	before := tableCounts{"write system.paxos": 10, "read orderstream.event_store": 5}
	after := tableCounts{"write system.paxos": 40, "read orderstream.event_store": 5, "write orderstream.orders": 7}
	d := after.since(before)
	require.Equal(t, tableCounts{"write system.paxos": 30, "write orderstream.orders": 7}, d)
	require.Equal(t, []string{"write system.paxos"}, d.top(1))
	require.Equal(t, "write orders", shortTable("write orderstream.orders", "orderstream"))
}

// The busy note says why: a high load average as the bench began (not
// later: the bench's own load raises it), or CPU used outside the stack
// while it was idle.
func TestBusy(t *testing.T) {
	at := time.Now()
	idle := func(other time.Duration) *idleResult {
		return &idleResult{use: cpuSample{at: at}.until(cpuSample{at: at.Add(time.Minute)}), other: other}
	}
	quiet := &variant{name: "a", loadStart: 0.2, loadEnd: 3.9, idle: idle(time.Second)}
	require.Empty(t, busy([]*variant{quiet}), "the bench's own load at the end is no sign of other work")
	require.Contains(t, busy([]*variant{{name: "a", loadStart: 2.5}}), "1-minute load average 2.50 at the start")
	loaded := &variant{name: "b", loadStart: 0.5, idle: idle(30 * time.Second)}
	require.Contains(t, busy([]*variant{quiet, loaded}), "0.50 of a core used outside the stack in the idle window of b")
}

func TestParseProcStat(t *testing.T) {
	got, err := parseProcStat("cpu  100 5 50 9000 40 3 2 1 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	require.NoError(t, err)
	require.Equal(t, 1610*time.Millisecond, got, "user+nice+system+irq+softirq+steal, not idle, iowait or guest")
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5 6"} {
		_, err := parseProcStat(bad)
		require.Error(t, err, bad)
	}
}

func TestGoals(t *testing.T) {
	at := time.Now()
	idle := cpuSample{at: at, cpu: map[string]time.Duration{"x": 0}}.until(cpuSample{at: at.Add(time.Minute), cpu: map[string]time.Duration{"x": time.Second}})
	run4 := result{clients: 4, report: &httpload.Report{Commands: 100, ReadLatency: httpload.Stats{P50: 20 * time.Millisecond, P99: 120 * time.Millisecond}},
		records: []time.Duration{5 * time.Millisecond, 9 * time.Millisecond}}
	v := &variant{name: "hints on", idle: &idleResult{use: idle}, runs: []result{run4}}
	got := map[string]bool{}
	for _, g := range goals([]*variant{v}) {
		got[g.what] = g.ok
	}
	require.Equal(t, map[string]bool{
		"idle: all processes ≤ 0.03 core":      true, // 1 s in a minute
		"4 clients: commit→read p50 ≤ 25 ms":   true,
		"4 clients: commit→read p99 ≤ 100 ms":  false,
		"4 clients: commit→record p50 ≤ 15 ms": true,
	}, got)
}

// With the bare servers measured, the idle goal is judged above them too,
// and the idle tables show them in their first column.
func TestIdleAboveTheBareServers(t *testing.T) {
	at := time.Now()
	use := func(cpu time.Duration) cpuUse {
		return cpuSample{at: at, cpu: map[string]time.Duration{"cassandra": 0}}.until(cpuSample{at: at.Add(time.Minute), cpu: map[string]time.Duration{"cassandra": cpu}})
	}
	bare = &idleResult{use: use(1500 * time.Millisecond)} // 0.025 of a core
	t.Cleanup(func() { bare = nil })
	v := &variant{name: "hints on", hints: "1", idle: &idleResult{use: use(3 * time.Second)}} // 0.05
	got := map[string]goal{}
	for _, g := range goals([]*variant{v}) {
		got[g.what] = g
	}
	require.False(t, got["idle: all processes ≤ 0.03 core"].ok)
	above := got["idle above the bare servers ≤ 0.03 core"]
	require.True(t, above.ok)
	require.Equal(t, "0.0250 (bare servers 0.0250)", above.got)
	var b strings.Builder
	idleGrid([]*variant{v}).markdown(&b)
	require.Contains(t, b.String(), "| process | bare servers | hints |")
	require.Contains(t, b.String(), "| cassandra | 0.0250 | 0.0500 |")
}

// The Markdown section holds the efficiency tables of both variants, the
// goals and the note of a busy machine, between e2ebench's markers.
func TestWriteMarkdown(t *testing.T) {
	at := time.Now()
	use := func(cpu map[string]time.Duration) cpuUse {
		return cpuSample{at: at, cpu: map[string]time.Duration{}}.until(cpuSample{at: at.Add(time.Minute), cpu: cpu})
	}
	run := func(clients, commands int, cass time.Duration) result {
		return result{clients: clients, report: &httpload.Report{Clients: clients, Commands: commands, Elapsed: 10 * time.Second},
			use: use(map[string]time.Duration{"cassandra": cass, "cdc-relay": time.Second}), records: []time.Duration{8 * time.Millisecond},
			counts: tableCounts{"write system.paxos": int64(6 * commands)}}
	}
	idle := func(relay time.Duration) *idleResult {
		return &idleResult{use: use(map[string]time.Duration{"cassandra": time.Second, "cdc-relay": relay}), counts: tableCounts{"scan orderstream.event_store": 120}}
	}
	vs := []*variant{
		{name: "baseline", hints: "0", idle: idle(3 * time.Second), runs: []result{run(4, 100, 10*time.Second), run(16, 400, 20*time.Second)}, loadStart: 0.3, loadEnd: 0.5},
		{name: "hints on", hints: "1", idle: idle(100 * time.Millisecond), runs: []result{run(4, 200, 5*time.Second), run(16, 800, 10*time.Second)}, loadStart: 0.5, loadEnd: 4.2},
	}
	vs[1].idle.other = 12 * time.Second // 0.2 of a core outside the stack
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	require.NoError(t, writeMarkdown(path, machine{cpu: "test CPU", cores: 2}, at, vs))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	doc := string(b)
	for _, want := range []string{
		beginMarker, endMarker,
		"| baseline | 4 | 10.0 | 110.00 | 8.00ms |",  // 11 s of CPU over 100 commands
		"| cdc-relay | 10.00 | 2.50 | 5.00 | 1.25 |", // ms per command, one column per run
		"| cdc-relay | 0.0500 | 0.0017 |",            // share of a core while idle
		"| write system.paxos | 6.00 | 6.00 | 6.00 | 6.00 |",
		"| scan event_store | 120.0 | 120.0 |", // per idle minute
		"**Note: the machine was busy with other work** (0.20 of a core used outside the stack in the idle window of hints on",
		"| other processes (not in all) | 0.0000 | 0.2000 |",
		"- **missed** 16 clients: CPU per command ≤ 3.9 ms: 13.75 ms",
		"- met idle: all processes ≤ 0.03 core: 0.0183",
	} {
		require.Contains(t, doc, want)
	}
}

// -variants picks the variants, always measured baseline, hints, noaudit;
// "hints on, auditors off" turns hints on itself only when no "hints on"
// precedes it.
func TestParseVariants(t *testing.T) {
	type setup struct{ name, hints, audit string }
	of := func(vs []*variant) []setup {
		var out []setup
		for _, v := range vs {
			out = append(out, setup{v.name, v.hints, v.audit})
		}
		return out
	}
	for _, tc := range []struct {
		in   string
		want []setup
	}{
		{"baseline,hints,noaudit", []setup{{"baseline: hints off, fixed-rate poll", "0", ""}, {"hints on", "1", ""}, {"hints on, auditors off", "", "0"}}},
		{"noaudit, hints", []setup{{"hints on", "1", ""}, {"hints on, auditors off", "", "0"}}},
		{"noaudit,baseline", []setup{{"baseline: hints off, fixed-rate poll", "0", ""}, {"hints on, auditors off", "1", "0"}}},
		{"noaudit", []setup{{"hints on, auditors off", "1", "0"}}},
		{"hints", []setup{{"hints on", "1", ""}}},
		{"running", []setup{{"as running", "", ""}}},
	} {
		vs, err := parseVariants(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, of(vs), tc.in)
	}
	for _, bad := range []string{"", ",", "hints,audit", "running,hints"} {
		_, err := parseVariants(bad)
		require.ErrorContains(t, err, "-variants", bad)
	}
	def, err := parseVariants(flag.Lookup("variants").DefValue)
	require.NoError(t, err)
	require.Len(t, def, 3, "all three by default")
}

// At the end the bench restarts what the variants left otherwise than
// `make up` runs it.
func TestRestore(t *testing.T) {
	for _, tc := range []struct {
		in           string
		hints, audit bool
	}{
		{"baseline,hints,noaudit", false, true},
		{"baseline", true, false},
		{"baseline,noaudit", false, true},
		{"hints", false, false},
		{"running", false, false},
	} {
		vs, err := parseVariants(tc.in)
		require.NoError(t, err)
		hints, audit := restore(vs)
		require.Equal(t, [2]bool{tc.hints, tc.audit}, [2]bool{hints, audit}, tc.in)
		if len(vs) > 1 {
			require.Equal(t, tc.hints || tc.audit, strings.Contains(variantsText(vs), "At the end"), tc.in)
		}
	}
}

// The goals are judged on "hints on" (as deployed), not on the variant
// measured last; each is followed by the same goal without auditors.
func TestGoalsBesideTheAuditorsOff(t *testing.T) {
	at := time.Now()
	idle := func(cpu time.Duration) *idleResult {
		return &idleResult{use: cpuSample{at: at, cpu: map[string]time.Duration{"x": 0}}.until(cpuSample{at: at.Add(time.Minute), cpu: map[string]time.Duration{"x": cpu}})}
	}
	run4 := result{clients: 4, report: &httpload.Report{Commands: 100, ReadLatency: httpload.Stats{P50: 20 * time.Millisecond, P99: 80 * time.Millisecond}},
		records: []time.Duration{5 * time.Millisecond}}
	vs, err := parseVariants("baseline,hints,noaudit")
	require.NoError(t, err)
	vs[0].idle, vs[1].idle, vs[2].idle = idle(30*time.Second), idle(12*time.Second), idle(time.Second) // 0.5, 0.2, 0.017 of a core
	for _, v := range vs {
		v.runs = []result{run4}
	}
	require.Equal(t, "hints on", judged(vs).name)
	require.Equal(t, "hints on, auditors off", withoutAuditors(vs).name)
	lines := goalLines(vs)
	require.Len(t, lines, 8, "four goals, each twice")
	require.Equal(t, goalLine{goal: goal{"idle: all processes ≤ 0.03 core", false, "0.2000"}}, lines[0])
	require.Equal(t, goalLine{goal: goal{"idle: all processes ≤ 0.03 core", true, "0.0167"}, other: "hints on, auditors off"}, lines[1])
	require.Equal(t, goals(vs), goalsOf(vs[1]))

	path := filepath.Join(t.TempDir(), "benchmarks.md")
	require.NoError(t, writeMarkdown(path, machine{cpu: "test CPU", cores: 2}, at, vs))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	doc := string(b)
	for _, want := range []string{
		"Three variants in the same run, one after the other: **baseline: hints off, fixed-rate poll** restarts command-service and cdc-relay without commit hints",
		"then **hints on, auditors off** restarts the four projectors without their auditors (`AUDIT=0 scripts/services.sh restart projector-order-read-model",
		"`projector.audit.enabled=false`; beside **hints on**, the auditors' share)",
		"At the end, what a variant changed is restarted as `make up` runs it",
		"Goals of issue 18, for hints on (as deployed), each followed by the same goal for hints on, auditors off:",
		"- **missed** idle: all processes ≤ 0.03 core: 0.2000\n- met idle: all processes ≤ 0.03 core (hints on, auditors off): 0.0167\n",
		"| process | baseline | hints | no audit |",
	} {
		require.Contains(t, doc, want)
	}
	var text strings.Builder
	efficiencyText(&text, vs)
	require.Contains(t, text.String(), "goals of issue 18 (hints on)")
	require.Contains(t, text.String(), "(hints on, auditors off)")
}
