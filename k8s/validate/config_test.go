package validate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// checkLevel is a log.level no service accepts: given through the
// environment, it makes the service stop at validation with exit code 2
// and exactly one error, after it has read the config file, and before it
// connects to anything. Any other error is the config file's fault.
const checkLevel = "__config_check__"

// TestServiceConfigs loads every config file the charts render into the
// real service binary that reads it, with the environment variables the
// pod gets from Secrets: every key must be known to the service and every
// value valid. It builds the binaries (go build; cached after the first).
func TestServiceConfigs(t *testing.T) {
	s := setup(t)
	bins := buildServices(t, s)
	for _, c := range s.applicationCharts(t) {
		for _, v := range s.checkedValues(t, c.Name) {
			t.Run(c.Name+"/"+caseName(v), func(t *testing.T) {
				t.Parallel()
				objs := s.decode(t, c.Name, v)
				checked := 0
				for _, o := range objs {
					spec := podSpec(o)
					if spec == nil {
						continue
					}
					cfg := configFile(t, objs, o.Meta.GetNamespace(), spec)
					for _, ct := range spec.Containers {
						bin, ok := bins.path[ct.Name]
						require.True(t, ok, "%s: container %s runs no known service", o, ct.Name)
						loadConfig(t, bins, ct.Name, bin, cfg, ct.Env)
						checked++
					}
				}
				require.NotZero(t, checked)
			})
		}
	}
}

type services struct {
	path map[string]string          // service -> binary
	keys map[string]map[string]bool // service -> config keys
}

var (
	built     *services
	buildErr  error
	buildOnce sync.Once
)

// buildServices builds every service of services/ once, and reads each
// one's keys from --help.
func buildServices(t *testing.T, s *suite) *services {
	t.Helper()
	buildOnce.Do(func() {
		entries, err := os.ReadDir(filepath.Join(s.root, "services"))
		if err != nil {
			buildErr = err
			return
		}
		var names []string
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(s.root, "services", e.Name(), "main.go")); err == nil {
				names = append(names, e.Name())
			}
		}
		dir := filepath.Join(tmpRoot, "bin")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if buildErr = goBuild(ctx, s.root, dir, names); buildErr != nil {
			return
		}
		built = &services{path: map[string]string{}, keys: map[string]map[string]bool{}}
		for _, n := range names {
			bin := filepath.Join(dir, n)
			built.path[n] = bin
			if built.keys[n], buildErr = helpKeys(ctx, bin); buildErr != nil {
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return built
}

var flagLine = regexp.MustCompile(`^\s+--([a-z0-9_.]+) `)

// helpKeys lists the config keys a service prints with --help.
func helpKeys(ctx context.Context, bin string) (map[string]bool, error) {
	out, err := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	if err != nil {
		return nil, errors.Join(err, errors.New(string(out)))
	}
	keys := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil && m[1] != "config" {
			keys[m[1]] = true
		}
	}
	if len(keys) == 0 {
		return nil, errors.New(bin + " --help listed no keys")
	}
	return keys, nil
}

// configFile is config.yaml of the ConfigMap a pod mounts as "config".
func configFile(t *testing.T, objs []Object, ns string, spec *corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		if v.Name != "config" || v.ConfigMap == nil {
			continue
		}
		for _, o := range objs {
			if cm, ok := o.Obj.(*corev1.ConfigMap); ok && cm.Namespace == ns && cm.Name == v.ConfigMap.Name {
				return cm.Data["config.yaml"]
			}
		}
	}
	t.Fatalf("no config ConfigMap mounted")
	return ""
}

func envName(key string) string {
	return "ORDERSTREAM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// loadConfig runs a service on a config file with the environment a pod
// gets, and requires that the only complaint is the deliberate one.
func loadConfig(t *testing.T, bins *services, service, bin, cfg string, env []corev1.EnvVar) {
	t.Helper()
	known := map[string]bool{}
	for k := range bins.keys[service] {
		known[envName(k)] = true
	}
	// A clean environment: the service reads ORDERSTREAM_* variables.
	vars := []string{"ORDERSTREAM_LOG_LEVEL=" + checkLevel}
	for _, e := range env {
		if !strings.HasPrefix(e.Name, "ORDERSTREAM_") {
			continue
		}
		if !known[e.Name] {
			t.Errorf("%s: %s sets no config key of the service", service, e.Name)
		}
		value := e.Value
		if e.ValueFrom != nil {
			// A stand-in for the Secret's value, long enough for a key.
			value = strings.Repeat("s", 48)
		}
		vars = append(vars, e.Name+"="+value)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config="+file)
	cmd.Env = vars
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s did not stop at validation:\n%s", service, out)
	msg := string(out)
	require.Equal(t, 2, exit.ExitCode(), "%s: exit code\n%s", service, msg)
	require.Equal(t, 1, strings.Count(msg, "config key "), "%s rejects the rendered config:\n%s\n--- config.yaml\n%s", service, msg, cfg)
	require.Contains(t, msg, `config key "log.level"`, "%s:\n%s", service, msg)
}
