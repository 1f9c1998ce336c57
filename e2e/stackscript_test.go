package e2e

// Tests of scripts/stack.sh's process handling, on stand-in servers (no
// Java, no stack): the script is sourced and its functions run against a
// run directory of the test's own, while the machine is kept busy, as it
// is when `make up` runs beside builds and tests.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/stacktest"
)

// fakeJava stands in for a server: it writes the line that makes the
// stand-in ready and runs until killed, as a process whose command line
// starts with this file's path and carries the launcher's arguments, the
// run-dir marker among them, as java's does.
const fakeJava = `#!/usr/bin/env bash
echo "Startup complete"
exec -a "$0" bash -c 'while :; do sleep 1; done' "$0" "$@"
`

// prelude sources the script and points it at the test's directories. The
// component "fake" is ready once its log says so since its start.
const prelude = `
source "$STACK_SH"
RUN_BASE="$TMP/run"
JAVA17_HOME="$TMP/jdk"
is_ready() { log_since_start_has "$1" "Startup complete"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
c=fake
mkdir -p "$(run_dir $c)/logs"
prepare_logs $c
cleanup() { local p; p="$(cat "$(pid_file $c)" 2>/dev/null || true)"; [[ -n "$p" ]] && kill -KILL "$p" 2>/dev/null; true; }
trap cleanup EXIT
`

// stackScript runs script after the prelude in bash, with every CPU kept
// busy meanwhile, and returns its output; it fails the test if the script
// fails.
func stackScript(t *testing.T, script string) string {
	t.Helper()
	tmp := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tmp, "jdk", "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "jdk", "bin", "java"), []byte(fakeJava), 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	busy, stop := context.WithCancel(ctx)
	defer stop()
	for range 2 * runtime.NumCPU() {
		go func() {
			for busy.Err() == nil { //nolint:revive // a CPU hog on purpose
			}
		}()
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+script)
	cmd.Env = append(os.Environ(), "TMP="+tmp, "STACK_SH="+filepath.Join(stacktest.RepoRoot(t), "scripts", "stack.sh"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "bash:\n%s", out)
	return string(out)
}

// The launch chain forks, and until it has exec'd the command line is
// stack.sh's, without the marker: a process on its way to java is alive,
// not exited, and its pid file stays. This is the case that made `make
// up` report "exited during startup" for a Cassandra that went on to
// start, and drop its pid file.
func TestStackScriptWaitsForALateExec(t *testing.T) {
	out := stackScript(t, `
MARK="-Dorderstream.stack.run=$(run_dir $c)" J="$JAVA17_HOME/bin/java" \
  bash -c 'sleep 2; exec "$J" "$MARK"' >>"$(log_file $c)" 2>&1 &
pid=$!
echo "$pid" >"$(pid_file $c)"
pid_is_ours $c "$pid" && fail "pid $pid carries the marker before its exec"
# status meanwhile: not ours yet, but alive, so the pid file is kept
get_pid $c >/dev/null && fail "get_pid took pid $pid for ours before its exec"
[[ -f "$(pid_file $c)" ]] || fail "get_pid dropped the pid file of a live process"
STACK_TIMEOUT=60 wait_ready $c "$pid" "$(now_ms)" || fail "wait_ready gave up on pid $pid"
[[ "$(cat "$(pid_file $c)")" == "$pid" ]] || fail "pid file lost"
[[ "$(get_pid $c)" == "$pid" ]] || fail "get_pid does not find pid $pid"
kill_one $c
pid_alive "$pid" && fail "pid $pid alive after kill"
[[ ! -f "$(pid_file $c)" ]] || fail "pid file left after kill"
echo PASSED
`)
	require.Contains(t, out, "ready on", out)
	require.Contains(t, out, "PASSED", out)
}

// A server that dies during its start-up is reported at once, not after
// the readiness timeout, and its pid file goes.
func TestStackScriptReportsAnExitDuringStartup(t *testing.T) {
	out := stackScript(t, `
MARK="-Dorderstream.stack.run=$(run_dir $c)" bash -c 'sleep 1; echo "Exception: bad config"; exit 3' >>"$(log_file $c)" 2>&1 &
pid=$!
echo "$pid" >"$(pid_file $c)"
start=$SECONDS
STACK_TIMEOUT=60 wait_ready $c "$pid" "$(now_ms)" && fail "wait_ready took a dead process for ready"
((SECONDS - start < 30)) || fail "the exit was noticed only after $((SECONDS - start))s"
[[ ! -f "$(pid_file $c)" ]] || fail "pid file of a dead process kept"
echo PASSED
`)
	require.Contains(t, out, "exited during startup", out)
	require.Contains(t, out, "bad config", out, "the log's end is shown")
	require.Contains(t, out, "PASSED", out)
}

// The real launch on a busy machine: the pid recorded is the server's,
// the server holds no descriptor of its caller (a caller's flock on the
// stack's lock would otherwise stay held for the server's whole life),
// and a server whose pid file was lost is found again by its marker and
// can be stopped.
func TestStackScriptLaunchUnderLoad(t *testing.T) {
	out := stackScript(t, `
exec 7>"$TMP/caller.lock"
flock 7
pid="$(launch $c -Dsome.option=1)"
echo "$pid" >"$(pid_file $c)"
STACK_TIMEOUT=60 wait_ready $c "$pid" "$(now_ms)" || fail "wait_ready gave up on pid $pid"
for fd in /proc/$pid/fd/*; do
  target="$(readlink "$fd" || true)"
  [[ "$target" == "$TMP/caller.lock" || "$target" == "$RUN_BASE/.lock" ]] && fail "the server inherited $fd -> $target"
done
exec 7>&-
flock -n "$TMP/caller.lock" true || fail "the caller's lock is still held after it let go"
rm -f "$(pid_file $c)"
[[ "$(get_pid $c)" == "$pid" ]] || fail "a server without pid file is not found by its marker"
[[ "$(cat "$(pid_file $c)")" == "$pid" ]] || fail "the pid file is not written again"
kill_one $c
pid_alive "$pid" && fail "pid $pid alive after kill"
echo PASSED
`)
	require.Contains(t, out, "had no pid file; recording it", out)
	require.True(t, strings.Contains(out, "PASSED"), out)
}
