package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK)): 100 on every Linux architecture Go supports,
// bar none that this bench runs on.
const clockTicks = 100

// proc is one process of the stack, named as the tables show it.
type proc struct {
	name string
	pid  int
}

// stackProcs finds every process of the local stack through the pid files
// that scripts/stack.sh (.run/stack/<c>/<c>.pid) and scripts/services.sh
// (.run/services/<name>.pid) write: Cassandra, Kafka and every service, in
// that order. A process whose pid file is missing or stale is an error:
// the figures would silently leave it out.
func stackProcs(runDir string, services []string) ([]proc, error) {
	var (
		out  []proc
		errs []error
	)
	add := func(name, pidFile string) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: pid file %s: %w", name, pidFile, err))
			return
		}
		if _, err := readCPU(pid); err != nil {
			errs = append(errs, fmt.Errorf("%s (pid %d from %s) is not running: %w", name, pid, pidFile, err))
			return
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && strings.HasSuffix(exe, " (deleted)") {
			fmt.Fprintf(os.Stderr, "warning: %s (pid %d) runs an older build of %s: scripts/services.sh restart %s\n",
				name, pid, strings.TrimSuffix(exe, " (deleted)"), name)
		}
		out = append(out, proc{name: name, pid: pid})
	}
	for _, c := range []string{"cassandra", "kafka"} {
		add(c, filepath.Join(runDir, "stack", c, c+".pid"))
	}
	for _, s := range services {
		add(s, filepath.Join(runDir, "services", s+".pid"))
	}
	return out, errors.Join(errs...)
}

// readCPU is the CPU time a process has used so far, user and system,
// every thread included (fields 14 and 15 of /proc/<pid>/stat).
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat reads utime+stime from the text of /proc/<pid>/stat. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted after its last ')'.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat %q", s)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed stat %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuSample is the CPU time of every process at one moment.
type cpuSample struct {
	at  time.Time
	cpu map[string]time.Duration
}

// sampleCPU reads the CPU time of every process. A process that went away
// is an error: its CPU time would be lost.
func sampleCPU(procs []proc) (cpuSample, error) {
	s := cpuSample{at: time.Now(), cpu: make(map[string]time.Duration, len(procs))}
	for _, p := range procs {
		d, err := readCPU(p.pid)
		if err != nil {
			return s, fmt.Errorf("%s (pid %d) went away: %w", p.name, p.pid, err)
		}
		s.cpu[p.name] = d
	}
	return s, nil
}

// cpuUse is what each process used between two samples.
type cpuUse struct {
	elapsed time.Duration
	cpu     map[string]time.Duration
}

func (a cpuSample) until(b cpuSample) cpuUse {
	u := cpuUse{elapsed: b.at.Sub(a.at), cpu: make(map[string]time.Duration, len(b.cpu))}
	for name, d := range b.cpu {
		u.cpu[name] = d - a.cpu[name]
	}
	return u
}

// total is the CPU time of every process together.
func (u cpuUse) total() time.Duration {
	var t time.Duration
	for _, d := range u.cpu {
		t += d
	}
	return t
}

// cores is d as a share of one core over the window.
func (u cpuUse) cores(d time.Duration) float64 {
	if u.elapsed <= 0 {
		return 0
	}
	return d.Seconds() / u.elapsed.Seconds()
}

// machineBusy is the CPU time all processors of the machine have spent
// busy so far (the first line of /proc/stat: everything but idle and
// iowait).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

func parseProcStat(s string) (time.Duration, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/stat line %q: %w", line, err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// loadAverage is the 1-minute load average (0 when unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
