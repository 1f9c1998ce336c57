// Package servicetest holds the contract every service binary meets, run
// by each service's own test against the real local stack: the binary
// starts with a minimal config, answers /healthz and /readyz, exits 0 within
// the shutdown deadline on SIGTERM, and exits non-zero naming the key of a
// broken config value.
package servicetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/stacktest"
)

// Spec describes what the binary needs.
type Spec struct {
	Kafka bool     // the service talks to the broker too
	Env   []string // more environment, e.g. a topic prefix of the test's own
}

// Build compiles the main package in the test's working directory.
func Build(t testing.TB) string {
	t.Helper()
	return BuildDir(t, ".")
}

// BuildDir compiles the main package in dir (relative to the test's
// working directory; another service of the workspace, say).
func BuildDir(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(filepath.Clean(dir))+"-service")
	cmd := exec.Command("go", "build", "-o", bin, dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// FreeAddr returns a loopback address with a port free right now, for a
// service started a moment later. The port is taken below the kernel's
// ephemeral range: a port of that range (what listening on port 0 gives)
// can be taken by any outgoing connection between this call and the
// service's bind (a driver reconnecting after a fault did, and the service
// failed with "address already in use"); a port below it can only be taken
// by another listener.
func FreeAddr(t testing.TB) string {
	t.Helper()
	const lowest = 10000 // above the well-known ports and this project's own
	if first := ephemeralFirst(); first > lowest+1000 {
		for range 200 {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lowest+mrand.IntN(first-lowest)))
			if err != nil {
				continue // in use: try another
			}
			addr := ln.Addr().String()
			require.NoError(t, ln.Close())
			return addr
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// ephemeralFirst is the first port of the kernel's ephemeral range
// (read, never changed), or 0 when it cannot be read.
func ephemeralFirst() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		return 0
	}
	return first
}

// Process is a running service binary.
type Process struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
	err    error
}

// Start runs bin with env added to the test's environment.
func Start(t testing.TB, bin string, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &Process{cmd: cmd, output: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.output.String())
		}
	})
	return p
}

// Output is what the process wrote so far.
func (p *Process) Output() string { return p.output.String() }

// Wait waits up to timeout for the process to exit and returns its exit
// code, or -1 if it is still running.
func (p *Process) Wait(timeout time.Duration) int {
	select {
	case <-p.done:
		var exit *exec.ExitError
		if errors.As(p.err, &exit) {
			return exit.ExitCode()
		}
		if p.err != nil {
			return -2
		}
		return 0
	case <-time.After(timeout):
		return -1
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// WaitHTTP polls url until it answers want, or fails the test at timeout.
func WaitHTTP(t testing.TB, p *Process, url string, want int, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	var last string
	require.Eventuallyf(t, func() bool {
		select {
		case <-p.done:
			return false
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return resp.StatusCode == want
	}, timeout, 100*time.Millisecond, "GET %s never answered %d; last answer: %s", url, want, &last)
}

// Env is the environment that points a service at the local stack.
func Env(t testing.TB, spec Spec, adminAddr string) []string {
	t.Helper()
	c := stacktest.RequireCQL(t)
	stacktest.Migrate(t, c, c.Keyspace)
	env := []string{
		"ORDERSTREAM_ADMIN_ADDR=" + adminAddr,
		"ORDERSTREAM_CQL_HOSTS=" + strings.Join(c.Hosts, ","),
		"ORDERSTREAM_CQL_KEYSPACE=" + c.Keyspace,
		"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
		"ORDERSTREAM_LOG_LEVEL=debug",
	}
	if spec.Kafka {
		k := stacktest.RequireKafka(t)
		env = append(env, "ORDERSTREAM_KAFKA_BROKERS="+strings.Join(k.Brokers, ","))
	}
	return append(env, spec.Env...)
}

// Contract runs the contract every service binary meets.
func Contract(t *testing.T, spec Spec) {
	bin := Build(t)

	t.Run("serves health and stops on SIGTERM", func(t *testing.T) {
		addr := FreeAddr(t)
		p := Start(t, bin, Env(t, spec, addr))
		WaitHTTP(t, p, "http://"+addr+"/healthz", http.StatusOK, 60*time.Second)
		WaitHTTP(t, p, "http://"+addr+"/readyz", http.StatusOK, 60*time.Second)
		WaitHTTP(t, p, "http://"+addr+"/metrics", http.StatusOK, 5*time.Second)

		require.NoError(t, p.Signal(syscall.SIGTERM))
		// The shutdown deadline is 5 s; allow the process a little more to
		// close its connections and exit.
		code := p.Wait(8 * time.Second)
		require.Equal(t, 0, code, "exit code after SIGTERM (-1: still running)")
		require.Contains(t, p.Output(), `"message":"stopped"`)
	})

	broken := []struct {
		name string
		env  []string
		args []string
		key  string
	}{
		{name: "bad flag value", args: []string{"--cql.consistency=SOMETIMES"}, key: "cql.consistency"},
		{name: "bad env value", env: []string{"ORDERSTREAM_SUPERVISE_RESTART_BUDGET=many"}, key: "supervise.restart_budget"},
		{name: "invalid duration", env: []string{"ORDERSTREAM_ADMIN_CHECK_TIMEOUT=-3s"}, key: "admin.check_timeout"},
		{name: "unknown key in file", args: []string{"--config=" + writeFile(t, "cql:\n  hostz: [a]\n")}, key: "hostz"},
	}
	for _, tc := range broken {
		t.Run("broken config: "+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the process must exit non-zero; output: %s", out)
			require.Equal(t, 2, exit.ExitCode())
			require.Contains(t, string(out), tc.key)
		})
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
