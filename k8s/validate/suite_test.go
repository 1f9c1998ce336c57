package validate

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The release every chart is rendered as.
const (
	release   = "orderstream"
	namespace = "orderstream"
	// kubeVersion is the oldest Kubernetes the charts support (kubeVersion
	// in every Chart.yaml); rendering for it keeps the result independent
	// of the Kubernetes version the helm binary was built for.
	kubeVersion = "1.30.0"
	umbrella    = "orderstream"
	library     = "orderstream-lib"
)

// suite is what the tests share: the repository, helm, a copy of charts/
// with its dependencies vendored (so that the work tree is never written),
// the decoder and the renderings made so far.
type suite struct {
	root    string
	charts  string
	helm    *Helm
	decoder *Decoder
	err     error

	mu      sync.Mutex
	renders map[string]*rendering
}

type rendering struct {
	once sync.Once
	out  []byte
	err  error
}

var (
	theSuite  *suite
	suiteOnce sync.Once
	tmpRoot   string
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "orderstream-validate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// setup returns the shared suite. Without helm the tests skip, except under
// CI=true, where they fail.
func setup(t *testing.T) *suite {
	t.Helper()
	suiteOnce.Do(func() { theSuite = newSuite() })
	if err := theSuite.err; err != nil {
		if errors.Is(err, ErrNoHelm) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return theSuite
}

func newSuite() *suite {
	s := &suite{renders: map[string]*rendering{}}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		s.err = err
		return s
	}
	s.root = root
	bin, err := FindHelm(root)
	if err != nil {
		s.err = err
		return s
	}
	s.helm = NewHelm(bin, filepath.Join(tmpRoot, "helm"))
	if s.decoder, err = NewDecoder(); err != nil {
		s.err = err
		return s
	}
	s.charts = filepath.Join(tmpRoot, "charts")
	if err := os.CopyFS(s.charts, os.DirFS(filepath.Join(root, "charts"))); err != nil {
		s.err = fmt.Errorf("copying charts: %w", err)
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.helm.Script(ctx, filepath.Join(root, "scripts", "helm-deps.sh"), s.charts); err != nil {
		s.err = fmt.Errorf("vendoring chart dependencies: %w", err)
	}
	return s
}

// chart is one chart of charts/.
type chart struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Version     string            `json:"version"`
	AppVersion  string            `json:"appVersion"`
	KubeVersion string            `json:"kubeVersion"`
	Annotations map[string]string `json:"annotations"`
	Deps        []struct {
		Name       string `json:"name"`
		Version    string `json:"version"`
		Repository string `json:"repository"`
		Condition  string `json:"condition"`
	} `json:"dependencies"`

	dir string
}

// charts lists the charts of the repository's charts/.
func (s *suite) chartList(t *testing.T) []chart {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.root, "charts"))
	require.NoError(t, err)
	var out []chart
	for _, e := range entries {
		file := filepath.Join(s.root, "charts", e.Name(), "Chart.yaml")
		data, err := os.ReadFile(file)
		if !e.IsDir() || errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		var c chart
		require.NoError(t, yaml.Unmarshal(data, &c), file)
		c.dir = e.Name()
		out = append(out, c)
	}
	require.NotEmpty(t, out)
	return out
}

// valuesFiles lists ci/*-values.yaml of a chart, as paths relative to it.
func (s *suite) valuesFiles(t *testing.T, name string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.root, "charts", name, "ci", "*-values.yaml"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		out = append(out, filepath.Join("ci", filepath.Base(f)))
	}
	return out
}

// checkedValues are the values files a chart is rendered and checked
// with: its ci values, and for the umbrella chart the kind values of k8s/
// and the local cluster's (scripts/cluster.sh).
func (s *suite) checkedValues(t *testing.T, name string) []string {
	files := s.valuesFiles(t, name)
	if name == umbrella {
		files = append(files, kindValues, localValues)
	}
	return files
}

// caseName is the name of a values file without ci/ and -values.yaml.
func caseName(values string) string {
	switch values {
	case kindValues:
		return "kind"
	case localValues:
		return "local"
	}
	return strings.TrimSuffix(filepath.Base(values), "-values.yaml")
}

// render returns `helm template` of a chart with a values file (relative
// to the chart) and extra arguments, once per combination.
func (s *suite) render(t *testing.T, name, values string, extra ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", release, filepath.Join(s.charts, name), "--namespace", namespace, "--kube-version", kubeVersion}
	switch {
	case values == kindValues, values == localValues:
		args = append(args, "--values", filepath.Join(s.root, values))
	case values != "":
		args = append(args, "--values", filepath.Join(s.charts, name, values))
	}
	args = append(args, extra...)
	k := strings.Join(args, "\x00")
	s.mu.Lock()
	r := s.renders[k]
	if r == nil {
		r = &rendering{}
		s.renders[k] = r
	}
	s.mu.Unlock()
	r.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.out, r.err = s.helm.Run(ctx, args...)
	})
	return r.out, r.err
}

// decode renders and strictly decodes a chart with a values file.
func (s *suite) decode(t *testing.T, name, values string, extra ...string) []Object {
	t.Helper()
	out, err := s.render(t, name, values, extra...)
	require.NoError(t, err)
	objs, err := s.decoder.DecodeAll(name+" "+values, out)
	require.NoError(t, err, "strict decoding")
	return objs
}

// applicationCharts are every chart but the library.
func (s *suite) applicationCharts(t *testing.T) []chart {
	var out []chart
	for _, c := range s.chartList(t) {
		if c.Type != "library" {
			out = append(out, c)
		}
	}
	return out
}

// serviceCharts are the charts of long-running services.
func (s *suite) serviceCharts(t *testing.T) []chart {
	var out []chart
	for _, c := range s.applicationCharts(t) {
		if c.Name != umbrella && c.Name != "schema-migrator" {
			out = append(out, c)
		}
	}
	return out
}

func names(cs []chart) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// goBuild builds the service binaries of the workspace into dir.
func goBuild(ctx context.Context, root, dir string, services []string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
