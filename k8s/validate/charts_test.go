package validate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestChartLayout checks what holds the charts together: one version for
// all, the umbrella depending on every application chart by path, each
// application chart with its ci values, and the service charts' values of
// one shape.
func TestChartLayout(t *testing.T) {
	s := setup(t)
	charts := s.chartList(t)
	byName := map[string]chart{}
	for _, c := range charts {
		byName[c.Name] = c
	}
	require.Contains(t, byName, library)
	for _, c := range charts {
		assert.Equal(t, c.dir, c.Name, "chart directory and name")
		assert.Equal(t, charts[0].Version, c.Version, "%s: every chart has one version", c.Name)
		assert.Equal(t, charts[0].AppVersion, c.AppVersion, "%s: every chart has one appVersion", c.Name)
		assert.Equal(t, ">=1.30.0-0", c.KubeVersion, "%s: kubeVersion", c.Name)
		if c.Type == "library" {
			continue
		}
		assert.Equal(t, "application", c.Type, c.Name)
		var cases []string
		for _, v := range s.valuesFiles(t, c.Name) {
			cases = append(cases, caseName(v))
		}
		assert.Subset(t, cases, []string{"default", "production", "minimal"}, "%s: ci/*-values.yaml", c.Name)
		if c.Name == umbrella {
			continue
		}
		assert.Contains(t, []string{"api", "relay", "projector", "migration"}, c.Annotations["orderstream.io/component"], "%s: orderstream.io/component", c.Name)
		require.Len(t, c.Deps, 1, "%s depends on the library alone", c.Name)
		assert.Equal(t, "file://../"+library, c.Deps[0].Repository, c.Name)
		assert.Equal(t, byName[library].Version, c.Deps[0].Version, c.Name)
	}
	require.Contains(t, byName, library)
	require.Equal(t, "library", byName[library].Type)

	u := byName[umbrella]
	var deps []string
	for _, d := range u.Deps {
		deps = append(deps, d.Name)
		assert.Equal(t, "file://../"+d.Name, d.Repository)
		assert.Equal(t, byName[d.Name].Version, d.Version, d.Name)
		if d.Name != library {
			assert.Equal(t, d.Name+".enabled", d.Condition)
		}
	}
	want := append(names(s.applicationCharts(t)), library)
	want = slices.DeleteFunc(want, func(n string) bool { return n == umbrella })
	slices.Sort(want)
	slices.Sort(deps)
	assert.Equal(t, want, deps, "the umbrella depends on every chart")

	// The service charts differ in config, secrets and ports, not in how
	// Kubernetes runs them.
	var first []string
	for i, c := range s.serviceCharts(t) {
		shape := valuesShape(t, filepath.Join(s.root, "charts", c.Name, "values.yaml"), "config", "secretEnv")
		if i == 0 {
			first = shape
			continue
		}
		assert.Equal(t, first, shape, "values.yaml of %s has the shape of the other service charts", c.Name)
	}
}

// valuesShape lists the dotted paths of a values file's map keys, leaving
// out the subtrees named in skip.
func valuesShape(t *testing.T, file string, skip ...string) []string {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(data, &v), file)
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, x := range m {
			p := prefix + k
			if slices.Contains(skip, p) {
				continue
			}
			out = append(out, p)
			if sub, ok := x.(map[string]any); ok {
				walk(p+".", sub)
			}
		}
	}
	walk("", v)
	sort.Strings(out)
	return out
}

// TestLint runs helm lint --strict on every chart with every ci values
// file; the library chart is linted alone (and rendered through every
// chart that uses it).
func TestLint(t *testing.T) {
	s := setup(t)
	for _, c := range s.chartList(t) {
		values := s.valuesFiles(t, c.Name)
		if c.Type == "library" {
			values = []string{""}
		}
		for _, v := range values {
			t.Run(c.Name+"/"+caseName(v), func(t *testing.T) {
				t.Parallel()
				args := []string{"lint", "--strict", "--kube-version", kubeVersion, filepath.Join(s.charts, c.Name)}
				if v != "" {
					args = append(args, "--values", filepath.Join(s.charts, c.Name, v))
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := s.helm.Run(ctx, args...)
				require.NoError(t, err)
				require.Contains(t, string(out), "0 chart(s) failed")
			})
		}
	}
}

// TestRender renders every application chart with every ci values file,
// decodes every document strictly into its API type and holds the result
// to Check.
func TestRender(t *testing.T) {
	s := setup(t)
	for _, c := range s.applicationCharts(t) {
		for _, v := range s.checkedValues(t, c.Name) {
			t.Run(c.Name+"/"+caseName(v), func(t *testing.T) {
				t.Parallel()
				objs := s.decode(t, c.Name, v)
				require.NotEmpty(t, objs)
				for _, err := range Check(objs, release) {
					t.Error(err)
				}
			})
		}
	}
}

// TestRenderRefuses checks that the charts refuse values that would run but
// not work.
func TestRenderRefuses(t *testing.T) {
	s := setup(t)
	for _, tc := range []struct {
		name, chart string
		set         []string
		want        string
	}{
		{"relay autoscaling", "cdc-relay", []string{"autoscaling.enabled=true"}, "one replica holds the relay lease"},
		{"projector above partitions", "projector-order-read-model", []string{"autoscaling.enabled=true", "autoscaling.maxReplicas=24"}, "exceeds autoscaling.maxPartitions"},
		{"migrator secret without name", "schema-migrator", []string{"secretEnv.cql\\.password.key=password"}, "name an existing Secret"},
		{"global secret without name", "command-service", []string{"global.secretEnv.cql\\.password.key=password"}, "name the Secret"},
		{"unknown routing mode", umbrella, []string{"routing.mode=nodeport"}, "routing.mode must be gateway, ingress or none"},
		{"ingress on one host", umbrella, []string{"routing.mode=ingress", "routing.ingress.hosts.commands=api.example.com", "routing.ingress.hosts.queries=api.example.com"}, "cannot split one host by method"},
		{"ingress without hosts", umbrella, []string{"routing.mode=ingress"}, "routing.ingress.hosts.commands is required"},
		{"gateway TLS without certificate", umbrella, []string{"routing.gateway.tls.enabled=true"}, "routing.gateway.tls.secretName is required"},
		{"shared gateway without parentRefs", umbrella, []string{"routing.gateway.create=false"}, "routing.gateway.parentRefs is required"},
		{"route to a disabled service", umbrella, []string{"query-service.enabled=false"}, "routes to query-service, which is disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var extra []string
			for _, kv := range tc.set {
				extra = append(extra, "--set", kv)
			}
			_, err := s.render(t, tc.chart, "", extra...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestGlobals checks how the umbrella's global values reach the charts: a
// config section only where the service reads it (a service refuses
// unknown keys), secret mounts by section, the route's backends by name.
func TestGlobals(t *testing.T) {
	s := setup(t)
	objs := s.decode(t, umbrella, "ci/production-values.yaml")
	configs := map[string]map[string]any{}
	mounts := map[string][]string{}
	for _, o := range objs {
		name := o.Meta.GetLabels()["app.kubernetes.io/name"]
		switch v := o.Obj.(type) {
		case *corev1.ConfigMap:
			if data, ok := v.Data["config.yaml"]; ok {
				var cfg map[string]any
				require.NoError(t, yaml.Unmarshal([]byte(data), &cfg))
				configs[name] = cfg
			}
		}
		if spec := podSpec(o); spec != nil {
			for _, vol := range spec.Volumes {
				if vol.Secret != nil {
					mounts[name] = append(mounts[name], vol.Secret.SecretName)
				}
			}
		}
	}
	require.Len(t, configs, 9)
	for name, cfg := range configs {
		// command-service reads the broker for its commit hints (on in its chart).
		stream := name == "cdc-relay" || strings.HasPrefix(name, "projector-") || name == "command-service"
		assert.Equal(t, stream, cfg["kafka"] != nil, "%s: kafka section", name)
		assert.Equal(t, name != "schema-migrator", cfg["tracing"] != nil, "%s: tracing section", name)
		assert.Equal(t, "scylla-client.scylla.svc", dig(cfg, "cql", "hosts").([]any)[0], name)
		assert.Equal(t, true, dig(cfg, "cql", "tls", "enabled"), name)
		want := []string{"scylla-client-tls"}
		if stream {
			want = append(want, "redpanda-default-cert")
		}
		if cfg["personal"] != nil {
			want = append(want, "kek-from-vault")
		}
		assert.ElementsMatch(t, want, mounts[name], "%s: secret volumes", name)
	}
	assert.Equal(t, "{'class': 'NetworkTopologyStrategy', 'dc1': 3}", dig(configs["schema-migrator"], "migrate", "replication"))
	assert.Equal(t, ":8081", dig(configs["command-service"], "http", "addr"))
	assert.Equal(t, ":9088", dig(configs["projector-customer-read-model"], "admin", "addr"))
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// TestGolden diffs the umbrella chart's renderings with every ci values
// file against testdata/golden/orderstream/<case>.yaml; -update rewrites
// them. Generated secret values are masked.
func TestGolden(t *testing.T) {
	s := setup(t)
	dir := filepath.Join("testdata", "golden", umbrella)
	cases := map[string]bool{}
	for _, v := range s.valuesFiles(t, umbrella) {
		name := caseName(v)
		cases[name+".yaml"] = true
		t.Run(name, func(t *testing.T) {
			out, err := s.render(t, umbrella, v)
			require.NoError(t, err)
			got := maskGenerated(t, s, out)
			file := filepath.Join(dir, name+".yaml")
			if *update {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				require.NoError(t, os.WriteFile(file, got, 0o644))
				return
			}
			want, err := os.ReadFile(file)
			require.NoError(t, err, "no golden file: go test ./k8s/validate/... -update")
			if d := firstDifference(string(want), string(got)); d != "" {
				t.Errorf("%s differs from the rendering (go test ./k8s/validate/... -update, then review the diff):\n%s", file, d)
			}
		})
	}
	if *update {
		return
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, cases[filepath.Base(f)], "%s has no ci values file any more: remove it", f)
	}
}

var dataLine = regexp.MustCompile(`(?m)^(  ([A-Za-z0-9._-]+): ).*$`)

// maskGenerated replaces the values of the keys a Secret says were
// generated (random at every rendering) with a fixed text.
func maskGenerated(t *testing.T, s *suite, out []byte) []byte {
	docs, err := SplitYAML(out)
	require.NoError(t, err)
	result := string(out)
	for _, doc := range docs {
		o, err := s.decoder.Decode("golden", doc)
		require.NoError(t, err)
		gen := o.Meta.GetAnnotations()["orderstream.io/generated-keys"]
		if o.Kind() != "Secret" || gen == "" {
			continue
		}
		keys := strings.Split(gen, ",")
		masked := dataLine.ReplaceAllStringFunc(string(doc), func(line string) string {
			m := dataLine.FindStringSubmatch(line)
			if slices.Contains(keys, m[2]) {
				return m[1] + "R0VORVJBVEVE # generated at install"
			}
			return line
		})
		result = strings.Replace(result, strings.TrimRight(string(doc), "\n"), strings.TrimRight(masked, "\n"), 1)
	}
	return []byte(result)
}

// firstDifference describes the first line where two texts differ, with
// some context, or returns "".
func firstDifference(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(0, i-3)
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d (golden %d lines, rendered %d):\n", i+1, len(w), len(g))
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "   %s\n", w[j])
	}
	for j := i; j < min(len(w), i+5); j++ {
		fmt.Fprintf(&b, " - %s\n", w[j])
	}
	for j := i; j < min(len(g), i+5); j++ {
		fmt.Fprintf(&b, " + %s\n", g[j])
	}
	return b.String()
}
