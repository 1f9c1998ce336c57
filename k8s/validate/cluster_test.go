package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// kindValues are the umbrella chart's values for the kind cluster; they
// are rendered and checked like the ci values, without a golden file.
const kindValues = "k8s/orderstream-kind-values.yaml"

// localValues are its values for the local cluster of scripts/cluster.sh,
// checked the same way.
const localValues = "k8s/local/values.yaml"

// TestClusterManifests checks k8s/. The namespaces and the GatewayClass
// decode strictly into their API types. ScyllaCluster, the kind cluster
// config and the values of the Redpanda and kube-prometheus-stack charts
// belong to APIs this module does not vendor (the Scylla Operator's, kind's,
// the charts' own schemas): they are checked as YAML with the fields the
// orderstream chart depends on, which must agree with its defaults.
func TestClusterManifests(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	dec, err := NewDecoder()
	require.NoError(t, err)
	read := func(rel string) []byte {
		data, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		return data
	}
	chartValues := readYAML(t, read("charts/orderstream/values.yaml"))
	cql := dig(chartValues, "global", "config", "cql").(map[string]any)
	brokers := dig(chartValues, "global", "config", "kafka", "brokers").([]any)

	t.Run("namespaces", func(t *testing.T) {
		objs, err := dec.DecodeAll("k8s/namespace.yaml", read("k8s/namespace.yaml"))
		require.NoError(t, err)
		ns := map[string]*corev1.Namespace{}
		for _, o := range objs {
			n, ok := o.Obj.(*corev1.Namespace)
			require.True(t, ok, "%s is no Namespace", o)
			ns[n.Name] = n
		}
		require.Contains(t, ns, namespace)
		assert.Equal(t, "restricted", ns[namespace].Labels["pod-security.kubernetes.io/enforce"])
		require.Contains(t, ns, "scylla")
	})

	t.Run("gatewayclass", func(t *testing.T) {
		objs, err := dec.DecodeAll("k8s/gateway/gatewayclass.yaml", read("k8s/gateway/gatewayclass.yaml"))
		require.NoError(t, err)
		require.Len(t, objs, 1)
		assert.Equal(t, dig(chartValues, "routing", "gateway", "className"), objs[0].Meta.GetName(), "the chart's default class")
	})

	t.Run("kind", func(t *testing.T) {
		var cfg struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Name       string `json:"name"`
			Nodes      []struct {
				Role   string            `json:"role"`
				Labels map[string]string `json:"labels"`
			} `json:"nodes"`
		}
		require.NoError(t, yaml.UnmarshalStrict(read("k8s/kind-config.yaml"), &cfg))
		assert.Equal(t, "Cluster", cfg.Kind)
		assert.Equal(t, "kind.x-k8s.io/v1alpha4", cfg.APIVersion)
		zones := map[string]bool{}
		for _, n := range cfg.Nodes {
			assert.Contains(t, []string{"control-plane", "worker"}, n.Role)
			if z := n.Labels["topology.kubernetes.io/zone"]; z != "" {
				zones[z] = true
			}
		}
		assert.Len(t, zones, 3, "a worker in each of three zones")
	})

	for _, file := range []string{"k8s/scylla/scyllacluster.yaml", "k8s/scylla/scyllacluster-kind.yaml"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			docs, err := SplitYAML(read(file))
			require.NoError(t, err)
			require.Len(t, docs, 1)
			sc := readYAML(t, docs[0])
			assert.Equal(t, "scylla.scylladb.com/v1", sc["apiVersion"])
			assert.Equal(t, "ScyllaCluster", sc["kind"])
			name, ns := dig(sc, "metadata", "name"), dig(sc, "metadata", "namespace")
			// The operator's client Service is <name>-client.
			assert.Equal(t, fmt.Sprintf("%s-client.%s.svc", name, ns), cql["hosts"].([]any)[0], "global.config.cql.hosts")
			assert.Equal(t, cql["local_dc"], dig(sc, "spec", "datacenter", "name"), "global.config.cql.local_dc")
			assert.NotEmpty(t, dig(sc, "spec", "version"))
			racks, _ := dig(sc, "spec", "datacenter", "racks").([]any)
			require.NotEmpty(t, racks)
			for _, r := range racks {
				assert.NotEmpty(t, dig(r.(map[string]any), "storage", "capacity"))
			}
		})
	}

	t.Run("redpanda", func(t *testing.T) {
		values := readYAML(t, read("k8s/redpanda/values.yaml"))
		kind := readYAML(t, read("k8s/redpanda/values-kind.yaml"))
		port := fmt.Sprint(dig(values, "listeners", "kafka", "port"))
		// Release "redpanda" in namespace "redpanda" (k8s/README.md).
		assert.Equal(t, "redpanda.redpanda.svc.cluster.local:"+port, brokers[0], "global.config.kafka.brokers")
		assert.Equal(t, false, dig(values, "config", "cluster", "auto_create_topics_enabled"), "the relay creates its topics")
		assert.Equal(t, false, dig(kind, "tls", "enabled"))
	})

	t.Run("kube-prometheus-stack", func(t *testing.T) {
		values := readYAML(t, read("k8s/monitoring/kube-prometheus-stack-values.yaml"))
		d := dig(chartValues, "monitoring", "dashboards").(map[string]any)
		assert.Equal(t, d["label"], dig(values, "grafana", "sidecar", "dashboards", "label"))
		assert.Equal(t, d["labelValue"], dig(values, "grafana", "sidecar", "dashboards", "labelValue"))
		assert.Equal(t, false, dig(values, "prometheus", "prometheusSpec", "serviceMonitorSelectorNilUsesHelmValues"))
		assert.Equal(t, false, dig(values, "prometheus", "prometheusSpec", "ruleSelectorNilUsesHelmValues"))
	})

	t.Run("network policies admit the namespaces of k8s/README.md", func(t *testing.T) {
		svc := readYAML(t, read("charts/command-service/values.yaml"))
		from := func(path ...string) string {
			peers := dig(svc, path...).([]any)
			return dig(peers[0].(map[string]any), "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name").(string)
		}
		readme := string(read("k8s/README.md"))
		for _, ns := range []string{from("networkPolicy", "apiFrom"), from("networkPolicy", "adminFrom")} {
			assert.True(t, strings.Contains(readme, "-n "+ns+" ") || strings.Contains(readme, "--namespace "+ns+" "), "k8s/README.md installs into %s", ns)
		}
	})
}

func readYAML(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(data, &v))
	require.NotNil(t, v)
	return v
}
