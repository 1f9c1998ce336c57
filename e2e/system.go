// Package e2e runs the whole of orderstream as real processes — the eight
// service binaries, on the real local stack, in a keyspace and under topic
// names of their own — for the end-to-end tests: the demo's scenario, bad
// input at the edges, load, and faults (processes killed, Kafka and
// Cassandra stopped, consumer groups rebalanced), each ending with the
// accounting checker at zero.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/accounting"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/kafka"
	"github.com/orderstream/orderstream/pkg/relay/relaytest"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The services, in the order they start: the relay first, because it
// creates the topics the projectors subscribe to.
var serviceNames = []string{
	"cdc-relay",
	"command-service",
	"query-service",
	"dlq-service",
	"projector-order-read-model",
	"projector-orders-by-customer",
	"projector-orders-by-status",
	"projector-customer-read-model",
}

// Projectors are the services that consume the topics.
var Projectors = serviceNames[4:]

// DLQToken is the bearer token the dlq-service of a System accepts.
const DLQToken = "e2e-dlq-token-0123456789abcdef"

// apiServices listen on an API port besides their admin port.
var apiServices = map[string]bool{"command-service": true, "query-service": true, "dlq-service": true}

var (
	buildOnce sync.Once
	binaries  map[string]string
	buildErr  error
)

// build compiles every service once per test process.
func build(t testing.TB) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orderstream-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		root := stacktest.RepoRoot(t)
		binaries = map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range serviceNames {
			wg.Go(func() {
				bin := filepath.Join(dir, name)
				cmd := exec.Command("go", "build", "-o", bin, "./services/"+name)
				cmd.Dir = root
				out, err := cmd.CombinedOutput()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					buildErr = errors.Join(buildErr, fmt.Errorf("go build %s: %v: %s", name, err, out))
				}
				binaries[name] = bin
			})
		}
		wg.Wait()
	})
	require.NoError(t, buildErr)
	return binaries
}

// System is orderstream running as processes.
type System struct {
	t        testing.TB
	Session  *gocql.Session
	Store    *eventstore.Store
	CQL      cql.Config
	Kafka    kafka.Config
	Prefix   string // topic prefix
	group    string // consumer group prefix
	logDir   string
	LogLevel string

	mu       sync.Mutex
	services map[string]*Service
}

// Service is one service's running process (and its extra replicas).
type Service struct {
	Name     string
	bin      string
	Admin    string // admin address
	API      string // API address ("" if none)
	env      []string
	proc     *Process
	replicas []*Process
}

// Process is a service process writing to its log file.
type Process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Options shape a System.
type Options struct {
	// LogLevel of every service (default info).
	LogLevel string
	// Partitions of each topic (default 6).
	Partitions int32
	// Env is added to every service's environment.
	Env []string
}

// Start starts the whole system in a keyspace and under topics of its
// own, and waits until every service is ready. Everything stops when the
// test ends.
func Start(t testing.TB, opts Options) *System {
	t.Helper()
	kc := stacktest.RequireKafka(t)
	bins := build(t)
	if opts.LogLevel == "" {
		opts.LogLevel = "info"
	}
	if opts.Partitions == 0 {
		opts.Partitions = 6
	}
	session, c := stacktest.PrivateKeyspace(t, "e2e_")
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &System{
		t: t, Session: session, Store: store, CQL: c, Kafka: kc,
		Prefix:   relaytest.Topics(ctx, t, kc, "e2e", opts.Partitions),
		group:    stacktest.UniqueName("e2e-"),
		logDir:   t.TempDir(),
		LogLevel: opts.LogLevel,
		services: map[string]*Service{},
	}
	for _, name := range serviceNames {
		sv := &Service{Name: name, bin: bins[name], Admin: servicetest.FreeAddr(t)}
		if apiServices[name] {
			sv.API = servicetest.FreeAddr(t)
		}
		sv.env = append(s.env(sv), opts.Env...)
		s.services[name] = sv
	}
	t.Cleanup(s.stopAll)
	for i, name := range serviceNames {
		s.start(s.services[name])
		if i == 0 { // the relay creates the topics before it is ready
			s.WaitReady(name, 90*time.Second)
		}
	}
	for _, name := range serviceNames {
		s.WaitReady(name, 90*time.Second)
	}
	return s
}

func (s *System) env(sv *Service) []string {
	env := []string{
		"ORDERSTREAM_ADMIN_ADDR=" + sv.Admin,
		"ORDERSTREAM_CQL_HOSTS=" + strings.Join(s.CQL.Hosts, ","),
		"ORDERSTREAM_CQL_KEYSPACE=" + s.CQL.Keyspace,
		"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(s.Kafka.Brokers, ","),
		"ORDERSTREAM_LOG_LEVEL=" + s.LogLevel,
		"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=15s",
		"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + s.Prefix,
		"ORDERSTREAM_PROJECTOR_TOPIC_PREFIX=" + s.Prefix,
		"ORDERSTREAM_PROJECTOR_GROUP=" + s.group + sv.Name,
		"ORDERSTREAM_QUERY_PAGE_TOKEN_KEY=e2e-page-token-key-0123456789abcdef",
		"ORDERSTREAM_DLQ_TOKEN=" + DLQToken,
	}
	if sv.API != "" {
		env = append(env, "ORDERSTREAM_HTTP_ADDR="+sv.API)
	}
	return env
}

// URL is the base URL of a service's API.
func (s *System) URL(name string) string { return "http://" + s.service(name).API }

// AdminURL is the base URL of a service's admin server.
func (s *System) AdminURL(name string) string { return "http://" + s.service(name).Admin }

func (s *System) service(name string) *Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.services[name]
	if !ok {
		s.t.Fatalf("no service %q", name)
	}
	return sv
}

func (s *System) start(sv *Service) {
	sv.proc = s.spawn(sv, sv.env, "")
}

func (s *System) spawn(sv *Service, env []string, suffix string) *Process {
	s.t.Helper()
	logPath := filepath.Join(s.logDir, sv.Name+suffix+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(s.t, err)
	cmd := exec.Command(sv.bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(s.t, cmd.Start(), "starting %s", sv.Name)
	p := &Process{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); _ = f.Close(); close(p.done) }()
	return p
}

// Pid is the process id of a service's main process.
func (s *System) Pid(name string) int { return s.service(name).proc.cmd.Process.Pid }

// WaitReady waits until a service's /readyz answers 200.
func (s *System) WaitReady(name string, within time.Duration) {
	s.t.Helper()
	sv := s.service(name)
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-sv.proc.done:
			s.t.Fatalf("%s exited (%v); log:\n%s", name, sv.proc.err, tail(sv.proc.log, 40))
		default:
		}
		code, body := get("http://" + sv.Admin + "/readyz")
		if code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s", code, body)
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("%s not ready within %s; last /readyz: %s; log:\n%s", name, within, last, tail(sv.proc.log, 40))
}

// Ready tells whether a service's /readyz answers 200 now.
func (s *System) Ready(name string) bool {
	code, _ := get("http://" + s.service(name).Admin + "/readyz")
	return code == http.StatusOK
}

// Kill SIGKILLs a service and waits for it to be gone.
func (s *System) Kill(name string) {
	s.t.Helper()
	sv := s.service(name)
	require.NoError(s.t, sv.proc.cmd.Process.Signal(syscall.SIGKILL))
	<-sv.proc.done
}

// Terminate sends SIGTERM and returns the exit code (-1 if the process
// did not exit within the timeout).
func (s *System) Terminate(name string, within time.Duration) int {
	s.t.Helper()
	sv := s.service(name)
	require.NoError(s.t, sv.proc.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-sv.proc.done:
		var exit *exec.ExitError
		if errors.As(sv.proc.err, &exit) {
			return exit.ExitCode()
		}
		if sv.proc.err != nil {
			return -2
		}
		return 0
	case <-time.After(within):
		return -1
	}
}

// Restart starts a service that was killed or terminated again, on the
// same ports, and waits until it is ready.
func (s *System) Restart(name string) {
	s.t.Helper()
	sv := s.service(name)
	select {
	case <-sv.proc.done:
	default:
		s.t.Fatalf("%s is still running", name)
	}
	s.start(sv)
	s.WaitReady(name, 90*time.Second)
}

// StartReplica starts one more process of a service (a second consumer of
// a projector's group, a standby relay), with an admin port of its own,
// and waits until it is healthy.
func (s *System) StartReplica(name string) *Process {
	s.t.Helper()
	sv := s.service(name)
	admin := servicetest.FreeAddr(s.t)
	env := append(append([]string{}, sv.env...), "ORDERSTREAM_ADMIN_ADDR="+admin)
	if sv.API != "" {
		env = append(env, "ORDERSTREAM_HTTP_ADDR="+servicetest.FreeAddr(s.t))
	}
	p := s.spawn(sv, env, fmt.Sprintf("-replica%d", len(sv.replicas)+1))
	s.mu.Lock()
	sv.replicas = append(sv.replicas, p)
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := get("http://" + admin + "/healthz"); code == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("replica of %s not healthy; log:\n%s", name, tail(p.log, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Log is the end of a service's log.
func (s *System) Log(name string, lines int) string { return tail(s.service(name).proc.log, lines) }

func (s *System) stopAll() {
	var wg sync.WaitGroup
	for _, sv := range s.services {
		for _, p := range append([]*Process{sv.proc}, sv.replicas...) {
			if p == nil {
				continue
			}
			wg.Go(func() {
				select {
				case <-p.done:
					return
				default:
				}
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(20 * time.Second):
					_ = p.cmd.Process.Kill()
					<-p.done
				}
			})
		}
	}
	wg.Wait()
	if s.t.Failed() {
		for _, name := range serviceNames {
			s.t.Logf("last lines of %s:\n%s", name, tail(s.services[name].proc.log, 15))
		}
	}
}

// Account waits until the relay has published everything and the read
// models have settled, then returns the accounting checker's report; it
// fails the test if the report does not reach zero within the time given.
func (s *System) Account(ctx context.Context, acked []accounting.Acked, within time.Duration) accounting.Report {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var (
		last accounting.Report
		err  error
	)
	for {
		last, err = accounting.Check(ctx, accounting.Input{Session: s.Session, Store: s.Store, Kafka: s.Kafka, TopicPrefix: s.Prefix, Acked: acked})
		if err == nil && last.Zero() {
			return last
		}
		if time.Now().After(deadline) {
			if err != nil {
				s.t.Fatalf("accounting: %v", err)
			}
			s.t.Fatalf("accounting never reached zero within %s:\n%s", within, last)
		}
		time.Sleep(2 * time.Second)
	}
}

// Stack runs scripts/stack.sh with args (stop kafka, start cassandra …).
func (s *System) Stack(args ...string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(stacktest.RepoRoot(s.t), "scripts", "stack.sh"), args...)
	out, err := cmd.CombinedOutput()
	require.NoError(s.t, err, "stack.sh %v: %s", args, out)
}

func get(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
