package catalog

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
	"github.com/orderstream/orderstream/pkg/servicetest"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

var update = flag.Bool("update", false, "rewrite registered.json from the services")

// TestRegisteredMatchesServices starts every service binary against the
// local stack (a keyspace and topics of its own), waits until its wiring
// is done, and reads every metric descriptor of its registry from the
// admin server. registered.json must list exactly those metrics with
// those labels. The services are the folders under services/ whose main
// runs service.Main (schema-migrator is a Job with no admin server).
func TestRegisteredMatchesServices(t *testing.T) {
	if testing.Short() {
		t.Skip("starts every service against the stack")
	}
	kafka := stacktest.RequireKafka(t)
	_, cql := stacktest.PrivateKeyspace(t, "observability")
	root := stacktest.RepoRoot(t)
	services := serviceNames(t, root)
	require.NotEmpty(t, services)

	bins := t.TempDir()
	args := []string{"build", "-o", bins + string(filepath.Separator)}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	prefix := stacktest.UniqueName("observability") + "."
	live := Registered{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range services {
		adminAddr := servicetest.FreeAddr(t)
		env := []string{
			"ORDERSTREAM_ADMIN_ADDR=" + adminAddr,
			"ORDERSTREAM_HTTP_ADDR=" + servicetest.FreeAddr(t),
			"ORDERSTREAM_CQL_HOSTS=" + strings.Join(cql.Hosts, ","),
			"ORDERSTREAM_CQL_KEYSPACE=" + cql.Keyspace,
			"ORDERSTREAM_KAFKA_BROKERS=" + strings.Join(kafka.Brokers, ","),
			"ORDERSTREAM_RELAY_TOPIC_PREFIX=" + prefix,
			"ORDERSTREAM_PROJECTOR_TOPIC_PREFIX=" + prefix,
			"ORDERSTREAM_SUPERVISE_SHUTDOWN_TIMEOUT=5s",
			"ORDERSTREAM_LOG_LEVEL=warn",
		}
		wg.Go(func() {
			descs, err := describe(filepath.Join(bins, s), s, adminAddr, env)
			if err != nil {
				t.Errorf("%s: %v", s, err)
				return
			}
			mu.Lock()
			live[s] = descs
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	committed, err := LoadRegistered()
	require.NoError(t, err)
	if *update {
		keepKnownTypes(live, committed)
		body, err := json.MarshalIndent(live, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("registered.json", append(body, '\n'), 0o644))
		return
	}
	require.Equal(t, shape(live), shape(committed),
		"registered.json is not what the services register; rewrite it with: go test ./k8s/observability/catalog -run TestRegistered -update (needs `make up-infra`)")
	_, err = New(live)
	require.NoError(t, err)
}

// serviceNames lists the services whose main runs service.Main.
func serviceNames(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "services"))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		body, err := os.ReadFile(filepath.Join(root, "services", e.Name(), "main.go"))
		if err != nil || !bytes.Contains(body, []byte("service.Main(")) {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// describe runs bin until its wiring is done (the "startup" readiness
// check passes) and returns its metric descriptors.
func describe(bin, name, addr string, env []string) ([]admin.Descriptor, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for done, last := wired(client, addr); !done; done, last = wired(client, addr) {
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("%s exited (%v) before it was wired; output:\n%s", name, err, output.String())
		case <-deadline:
			return nil, fmt.Errorf("%s not wired after 2m (last /readyz: %s); output:\n%s", name, last, output.String())
		case <-tick.C:
		}
	}
	resp, err := client.Get("http://" + addr + admin.DescriptorsPath)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s %s", admin.DescriptorsPath, resp.Status, body)
	}
	var descs []admin.Descriptor
	if err := json.NewDecoder(resp.Body).Decode(&descs); err != nil {
		return nil, err
	}
	return descs, nil
}

// wired reports whether the service's wiring is done: its startup check
// passes once every constructor (and so every registration) has run.
func wired(client *http.Client, addr string) (bool, string) {
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		return false, string(raw)
	}
	_, supervised := body.Checks["workers"]
	return body.Checks["startup"] == "ok" && supervised, string(raw)
}

// shape is what the queries depend on: each service's metric names with
// their labels. Help texts and types are left out: a type is known only
// once a metric has a sample, which may or may not be the case when the
// descriptors are read.
func shape(r Registered) map[string][]string {
	out := map[string][]string{}
	for svc, descs := range r {
		for _, d := range descs {
			ls := slices.Clone(d.Labels)
			for l, v := range d.ConstLabels {
				if l == "version" { // the build's version: "dev" here
					v = "*"
				}
				ls = append(ls, l+"="+v)
			}
			slices.Sort(ls)
			out[svc] = append(out[svc], d.Name+"{"+strings.Join(ls, ",")+"}")
		}
		slices.Sort(out[svc])
	}
	return out
}

// keepKnownTypes copies to live the types committed where live has none,
// so that rewriting the file never forgets a type seen before.
func keepKnownTypes(live, committed Registered) {
	for svc, descs := range live {
		known := map[string]string{}
		for _, d := range committed[svc] {
			known[d.Name] = d.Type
		}
		for i, d := range descs {
			if d.Type == "" {
				descs[i].Type = known[d.Name]
			}
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
