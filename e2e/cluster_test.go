//go:build cluster

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/accounting"
	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/eventstoretest"
	"github.com/orderstream/orderstream/pkg/httpload"
	"github.com/orderstream/orderstream/pkg/stacktest"
)

// The local cluster of scripts/cluster.sh (make cluster-up).
const (
	clusterGateway    = "http://10.243.0.2:8000"
	clusterPrometheus = "http://10.243.0.2:9090"
	clusterNamespace  = "orderstream"
	clusterRelease    = "orderstream"
	// clusterDNS is the cluster's CoreDNS, the pods' nameserver.
	clusterDNS = "10.243.0.2:53"
	// clusterHostIP is the host end of the cluster's veth pair, where the
	// shared stack's Cassandra and Kafka are relayed.
	clusterHostIP = "10.243.0.1"
)

// cluster runs kubectl and helm against the local cluster.
type cluster struct {
	t          *testing.T
	root       string
	kubeconfig string
	kubectl    string
	helm       string
	env        []string
	// failures are repeated at the end of a failed run, after the
	// cluster's state, where a summary that keeps only the end of the
	// output still shows them.
	failures []string
}

// requireCluster finds the local cluster; without one the test fails when
// CI=true and is skipped otherwise.
func requireCluster(t *testing.T) *cluster {
	t.Helper()
	root := stacktest.RepoRoot(t)
	c := &cluster{
		t:          t,
		root:       root,
		kubeconfig: filepath.Join(root, ".cache", "cluster", "run", "admin.kubeconfig"),
		kubectl:    filepath.Join(root, ".cache", "cluster", "k8s", "bin", "kubectl"),
		helm:       filepath.Join(root, ".cache", "bin", "helm"),
	}
	_, err := os.Stat(c.kubeconfig)
	if err == nil {
		var conn net.Conn
		conn, err = net.DialTimeout("tcp", "10.243.0.2:6443", 2*time.Second)
		if err == nil {
			_ = conn.Close()
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no local cluster (make cluster-up): %v", err)
		}
		t.Skipf("no local cluster (make cluster-up): %v", err)
	}
	home := t.TempDir()
	c.env = append(os.Environ(),
		"KUBECONFIG="+c.kubeconfig,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"PATH="+filepath.Join(root, ".cache", "cluster", "k8s", "bin")+":"+filepath.Join(root, ".cache", "cluster", "bin")+":"+filepath.Join(root, ".cache", "bin")+":"+os.Getenv("PATH"),
	)
	return c
}

// run runs a command in the repository and returns its standard output;
// it must succeed.
func (c *cluster) run(timeout time.Duration, name string, args ...string) string {
	c.t.Helper()
	out, err := c.try(timeout, name, args...)
	require.NoError(c.t, err)
	return out
}

func (c *cluster) try(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.root
	cmd.Env = c.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func (c *cluster) kube(args ...string) string {
	c.t.Helper()
	return c.run(2*time.Minute, c.kubectl, args...)
}

// kubeJSON decodes `kubectl get -o json` of args.
func (c *cluster) kubeJSON(v any, args ...string) {
	c.t.Helper()
	out := c.kube(append(args, "-o", "json")...)
	require.NoError(c.t, json.Unmarshal([]byte(out), v))
}

type podList struct {
	Items []struct {
		Metadata struct {
			Name              string            `json:"name"`
			Labels            map[string]string `json:"labels"`
			DeletionTimestamp *string           `json:"deletionTimestamp"`
		} `json:"metadata"`
		Spec struct {
			Containers []struct {
				Image string `json:"image"`
			} `json:"containers"`
		} `json:"spec"`
		Status struct {
			Phase             string `json:"phase"`
			ContainerStatuses []struct {
				Ready        bool `json:"ready"`
				RestartCount int  `json:"restartCount"`
			} `json:"containerStatuses"`
		} `json:"status"`
	} `json:"items"`
}

type deploymentList struct {
	Items []struct {
		Metadata struct {
			Name       string `json:"name"`
			Generation int64  `json:"generation"`
		} `json:"metadata"`
		Spec struct {
			Replicas int `json:"replicas"`
		} `json:"spec"`
		Status struct {
			ObservedGeneration int64 `json:"observedGeneration"`
			Replicas           int   `json:"replicas"`
			ReadyReplicas      int   `json:"readyReplicas"`
			UpdatedReplicas    int   `json:"updatedReplicas"`
			AvailableReplicas  int   `json:"availableReplicas"`
		} `json:"status"`
	} `json:"items"`
}

// allReady tells whether every Deployment of the namespace has all its
// replicas updated, ready and no more.
func (c *cluster) allReady() (bool, string) {
	var d deploymentList
	out, err := c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "get", "deployments", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || len(d.Items) == 0 {
		return false, fmt.Sprint(err)
	}
	for _, it := range d.Items {
		s := it.Status
		if s.ObservedGeneration < it.Metadata.Generation || s.UpdatedReplicas != it.Spec.Replicas ||
			s.ReadyReplicas != it.Spec.Replicas || s.Replicas != it.Spec.Replicas {
			return false, fmt.Sprintf("%s: %+v of %d", it.Metadata.Name, s, it.Spec.Replicas)
		}
	}
	return true, ""
}

func (c *cluster) waitAllReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := c.allReady()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("Deployments not ready after %s: %s\n%s", timeout, why, c.kube("-n", clusterNamespace, "get", "pods", "-o", "wide"))
		}
		time.Sleep(time.Second)
	}
}

// TestCluster installs the umbrella chart into the local cluster and holds
// it to issue 15: the migrator hook, every Deployment Ready under Pod
// Security restricted, the demo through the Gateway (and through the
// Ingress variant), Cassandra and Kafka reached through Services without
// selectors and the cluster's DNS, a rolling upgrade of every service under
// load with no failed request, pods killed under load, dead letters
// retried, left pending and purged through the dlq-service's API,
// Prometheus scraping them with the chart's rules and every dashboard
// query answered, and what helm uninstall leaves. The accounting checker is
// at zero after each load.
func TestCluster(t *testing.T) {
	c := requireCluster(t)
	started := time.Now()
	cqlc := stacktest.RequireCQL(t)
	kc := stacktest.RequireKafka(t)

	// A keyspace and topics of this run's own.
	keyspace := stacktest.UniqueName("k8s_")
	prefix := stacktest.UniqueName("k8s-")
	set := []string{
		"--set", "global.config.cql.keyspace=" + keyspace,
		"--set", "cdc-relay.config.relay.topic_prefix=" + prefix,
	}
	for _, p := range Projectors {
		set = append(set, "--set", p+".config.projector.topic_prefix="+prefix,
			"--set", p+".config.projector.group="+prefix+"-"+p)
	}

	t0 := time.Now()
	c.run(30*time.Minute, filepath.Join(c.root, "scripts", "cluster", "push-images.sh"), "t1", "t2")
	t.Logf("TIMING images built and pushed (ko, 9 services, tags t1 and t2): %s", time.Since(t0).Round(time.Second))

	helmArgs := func(args ...string) []string {
		return append(append([]string{}, args...), set...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "get", "pods,jobs,deployments,gateway,httproute,ingress", "-o", "wide")
			t.Logf("cluster state:\n%s", out)
			for _, l := range c.failures {
				t.Log(l)
			}
		}
		_, _ = c.try(5*time.Minute, c.helm, "uninstall", clusterRelease, "-n", clusterNamespace, "--wait")
		_, _ = c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "delete", "job,configmap,serviceaccount", "-l", "app.kubernetes.io/name=schema-migrator")
		_, _ = c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "delete", "service,endpointslice", "-l", "app.kubernetes.io/component in (external-cassandra,external-kafka)")
		s := stacktest.Session(t)
		_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
	})

	// helm install: the migrator's hook Job runs first, then every
	// Deployment becomes Ready.
	t0 = time.Now()
	c.run(20*time.Minute, c.helm, helmArgs("install", clusterRelease, "charts/orderstream", "-n", clusterNamespace,
		"-f", "k8s/local/values.yaml", "--set", "global.image.tag=t1", "--wait", "--timeout", "15m")...)
	c.waitAllReady(5 * time.Minute)
	t.Logf("TIMING helm install to all Ready: %s", time.Since(t0).Round(time.Second))

	t.Run("migrator hook and pod security", func(t *testing.T) {
		var jobs struct {
			Items []struct {
				Status struct {
					Succeeded int `json:"succeeded"`
				} `json:"status"`
			} `json:"items"`
		}
		c.kubeJSON(&jobs, "-n", clusterNamespace, "get", "jobs", "-l", "app.kubernetes.io/name=schema-migrator")
		require.Len(t, jobs.Items, 1)
		require.Equal(t, 1, jobs.Items[0].Status.Succeeded)
		require.Equal(t, "restricted", c.kube("get", "namespace", clusterNamespace, "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}"))
		// The migration made the keyspace's tables.
		s := keyspaceSession(t, cqlc, keyspace)
		store, err := eventstore.New(s, eventstore.DefaultConfig(), nil)
		require.NoError(t, err)
		_, err = store.Head(context.Background(), gocql.UUID{}) // fails if the table is missing
		require.NoError(t, err)
	})

	// Cassandra and Kafka through Services without selectors: the
	// services' config names them, the cluster's DNS answers with the
	// EndpointSlices' address, and the migrator (above), every service
	// (Ready) and the relay's publishing (the checker, below) went through
	// them.
	t.Run("services without selectors", func(t *testing.T) {
		for name, port := range map[string]string{"cassandra": "9042", "kafka": "9094"} {
			svc := clusterRelease + "-" + name
			require.Equal(t, "None", c.kube("-n", clusterNamespace, "get", "service", svc, "-o", "jsonpath={.spec.clusterIP}"))
			require.Empty(t, c.kube("-n", clusterNamespace, "get", "service", svc, "-o", "jsonpath={.spec.selector}"))
			require.Equal(t, clusterHostIP+" "+port, c.kube("-n", clusterNamespace, "get", "endpointslice", svc,
				"-o", "jsonpath={.endpoints[0].addresses[0]} {.ports[0].port}"))
			fqdn := svc + "." + clusterNamespace + ".svc.cluster.local"
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, clusterDNS)
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			addrs, err := r.LookupHost(ctx, fqdn)
			cancel()
			require.NoError(t, err, "the cluster DNS answers %s", fqdn)
			require.Equal(t, []string{clusterHostIP}, addrs)
		}
		var cm struct {
			Data map[string]string `json:"data"`
		}
		for _, svc := range []string{"command-service", "cdc-relay"} {
			c.kubeJSON(&cm, "-n", clusterNamespace, "get", "configmap", clusterRelease+"-"+svc)
			require.Contains(t, cm.Data["config.yaml"], clusterRelease+"-cassandra."+clusterNamespace+".svc.cluster.local", svc)
			require.NotContains(t, cm.Data["config.yaml"], clusterHostIP, svc)
		}
		require.Contains(t, cm.Data["config.yaml"], clusterRelease+"-kafka."+clusterNamespace+".svc.cluster.local:9094")
	})

	// The routes through Traefik: the Gateway and its HTTPRoute accepted.
	c.kube("-n", clusterNamespace, "wait", "--for=condition=Programmed", "--timeout=120s", "gateway/"+clusterRelease)
	c.kube("-n", clusterNamespace, "wait", "--for=jsonpath={.status.parents[0].conditions[?(@.type==\"Accepted\")].status}=True", "--timeout=120s", "httproute/"+clusterRelease+"-api")

	session := keyspaceSession(t, cqlc, keyspace)
	store, err := eventstore.New(session, eventstore.DefaultConfig(), nil)
	require.NoError(t, err)
	check := func(t *testing.T, acked []accounting.Acked) {
		t.Helper()
		var r accounting.Report
		deadline := time.Now().Add(3 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			r, err = accounting.Check(ctx, accounting.Input{Session: session, Store: store, Kafka: kc, TopicPrefix: prefix, Acked: acked})
			cancel()
			require.NoError(t, err)
			if r.Zero() || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Second) // the relay and projectors catch up
		}
		t.Logf("accounting: %s", r)
		require.True(t, r.Zero(), "%s", r)
	}

	t.Run("demo through the gateway", func(t *testing.T) {
		acked := clusterDemo(t, clusterGateway, clusterGateway, nil)
		check(t, acked)
	})

	t.Run("ingress variant", func(t *testing.T) {
		c.run(5*time.Minute, c.helm, helmArgs("upgrade", clusterRelease, "charts/orderstream", "-n", clusterNamespace, "--reuse-values",
			"--set", "routing.mode=ingress", "--set", "routing.ingress.hosts.commands=commands.orderstream.local",
			"--set", "routing.ingress.hosts.queries=queries.orderstream.local", "--wait", "--timeout", "10m")...)
		defer c.run(5*time.Minute, c.helm, helmArgs("upgrade", clusterRelease, "charts/orderstream", "-n", clusterNamespace, "--reuse-values",
			"--set", "routing.mode=gateway", "--wait", "--timeout", "10m")...)
		hosts := map[string]string{"commands": "commands.orderstream.local", "queries": "queries.orderstream.local"}
		require.Eventually(t, func() bool {
			req, _ := http.NewRequest("GET", clusterGateway+"/v1/orders?status=CREATED", nil)
			req.Host = hosts["queries"]
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 2*time.Minute, time.Second, "Traefik routes the Ingress")
		acked := clusterDemo(t, clusterGateway, clusterGateway, hosts)
		check(t, acked)
	})
	// Back on the Gateway.
	require.Eventually(t, func() bool {
		resp, err := http.Get(clusterGateway + "/v1/orders?status=CREATED")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, time.Second, "the HTTPRoute again")

	t.Run("rolling upgrade under load", func(t *testing.T) {
		const load = 90 * time.Second
		wait := startLoad(t, load)
		t0 := time.Now()
		c.run(20*time.Minute, c.helm, helmArgs("upgrade", clusterRelease, "charts/orderstream", "-n", clusterNamespace, "--reuse-values",
			"--set", "global.image.tag=t2", "--wait", "--timeout", "15m")...)
		c.waitAllReady(5 * time.Minute)
		took := time.Since(t0)
		t.Logf("TIMING helm upgrade of every service to all Ready under load: %s", took.Round(time.Second))
		require.Less(t, took, load-5*time.Second, "the load must outlast the upgrade")
		r := wait() // the rest of the load runs on the new pods
		require.Zero(t, r.Cancelled)
		var b strings.Builder
		r.Table(&b)
		t.Logf("load during the upgrade:\n%s", b.String())
		require.Greater(t, r.Commands, 50, "the load ran")
		require.Zero(t, r.UnexpectedTotal(), "%v %v", r.Unexpected, r.Samples)
		require.Zero(t, r.Retried, "a request failed and was retried (5xx, reset or timeout): %v", r.Statuses)
		for status, n := range r.Statuses {
			require.Less(t, status, 500, "%d answers %d", n, status)
			require.NotZero(t, status, "%d requests without an answer", n)
		}
		var pods podList
		c.kubeJSON(&pods, "-n", clusterNamespace, "get", "pods", "-l", "app.kubernetes.io/instance="+clusterRelease, "--field-selector=status.phase=Running")
		for _, p := range pods.Items {
			if p.Metadata.DeletionTimestamp != nil {
				continue
			}
			require.True(t, strings.HasSuffix(p.Spec.Containers[0].Image, ":t2"), "%s runs %s", p.Metadata.Name, p.Spec.Containers[0].Image)
		}
		check(t, ackedOf(t, r))
	})

	t.Run("pods killed under load", func(t *testing.T) {
		const load = 90 * time.Second
		t0 := time.Now()
		wait := startLoad(t, load)
		leader := func() string {
			var owner string
			if err := session.Query(`SELECT owner FROM relay_leases WHERE source = 'relay'`).Scan(&owner); err != nil {
				return ""
			}
			return strings.SplitN(owner, "/", 2)[0]
		}
		var first string
		require.Eventually(t, func() bool { first = leader(); return first != "" }, time.Minute, time.Second, "a relay holds the lease")
		kill := func(pod string) {
			t.Logf("killing pod %s", pod)
			c.kube("-n", clusterNamespace, "delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")
		}
		kill(first)
		require.Eventually(t, func() bool { l := leader(); return l != "" && l != first }, 2*time.Minute, time.Second, "the standby relay takes the lease")
		t.Logf("lease: %s -> %s", first, leader())
		for _, name := range []string{"projector-order-read-model", "command-service"} {
			var pods podList
			c.kubeJSON(&pods, "-n", clusterNamespace, "get", "pods", "-l", "app.kubernetes.io/name="+name)
			require.NotEmpty(t, pods.Items)
			kill(pods.Items[0].Metadata.Name)
		}
		c.waitAllReady(5 * time.Minute)
		require.Less(t, time.Since(t0), load-5*time.Second, "the load must outlast the kills and the recovery")
		r := wait()
		require.Zero(t, r.Cancelled)
		var b strings.Builder
		r.Table(&b)
		t.Logf("load while pods were killed:\n%s", b.String())
		require.Greater(t, r.Commands, 50, "the load ran")
		require.Zero(t, r.UnexpectedTotal(), "%v %v", r.Unexpected, r.Samples)
		check(t, ackedOf(t, r))
	})

	t.Run("dead letters through the dlq-service API", func(t *testing.T) {
		clusterDeadLetters(t, c, session, store)
	})

	t.Run("prometheus", func(t *testing.T) {
		clusterPrometheusChecks(t, c)
	})

	t.Run("helm uninstall", func(t *testing.T) {
		c.run(5*time.Minute, c.helm, "uninstall", clusterRelease, "-n", clusterNamespace, "--wait")
		// The Deployments' pods terminate (preStop, drain) after the
		// uninstall returns.
		require.Eventually(t, func() bool {
			out, err := c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "get", "pods", "-l", "app.kubernetes.io/instance="+clusterRelease, "-o", "name")
			return err == nil && strings.Count(out, "pod/") <= 1
		}, 3*time.Minute, time.Second, "the release's pods are gone")
		// What docs/deploy.md says stays: the hook objects, the migrator's
		// and the Services without selectors with their EndpointSlices, and
		// the personal-data KEK (resource-policy keep: losing it loses every
		// customer's personal data).
		left := c.kube("get", "all,configmap,secret,serviceaccount,pdb,networkpolicy,gateway,httproute,ingress,servicemonitor,prometheusrule,endpointslice",
			"-A", "-l", "app.kubernetes.io/instance="+clusterRelease, "-o", "name")
		var names []string
		for _, l := range strings.Fields(left) {
			names = append(names, l)
		}
		sort.Strings(names)
		want := []string{
			"configmap/" + clusterRelease + "-schema-migrator",
			"endpointslice.discovery.k8s.io/" + clusterRelease + "-cassandra",
			"endpointslice.discovery.k8s.io/" + clusterRelease + "-kafka",
			"job.batch/" + clusterRelease + "-schema-migrator",
			"secret/personal-data-kek",
			"service/" + clusterRelease + "-cassandra",
			"service/" + clusterRelease + "-kafka",
			"serviceaccount/" + clusterRelease + "-schema-migrator",
		}
		var pods []string
		for _, n := range names {
			if strings.HasPrefix(n, "pod/") {
				pods = append(pods, n) // the completed migrator pod of the Job
				continue
			}
		}
		require.LessOrEqual(t, len(pods), 1, "%v", names)
		rest := names[:0:0]
		for _, n := range names {
			if !strings.HasPrefix(n, "pod/") {
				rest = append(rest, n)
			}
		}
		require.Equal(t, want, rest)
	})
	t.Logf("TIMING whole cluster test: %s", time.Since(started).Round(time.Second))
}

func keyspaceSession(t *testing.T, c cql.Config, keyspace string) *gocql.Session {
	t.Helper()
	s, err := cql.Connect(context.Background(), c, keyspace, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// startLoad runs a load of valid commands and reads through the Gateway
// for d; wait returns its report once it is over. The load is not cut
// off: every command it sends gets its answer, so the checker can hold
// every event to an acknowledged command.
func startLoad(t *testing.T, d time.Duration) (wait func() *httpload.Report) {
	t.Helper()
	done := make(chan struct{})
	var r *httpload.Report
	var err error
	go func() {
		defer close(done)
		r, err = httpload.Run(context.Background(), httpload.Config{
			CommandURL: clusterGateway, QueryURL: clusterGateway,
			Clients: 4, Duration: d, ReadEvery: 3, Seed: 15,
		})
	}()
	return func() *httpload.Report {
		<-done
		require.NoError(t, err)
		return r
	}
}

// ackedOf lists the commands a load saw acknowledged.
func ackedOf(t *testing.T, r *httpload.Report) []accounting.Acked {
	var acked []accounting.Acked
	for _, cm := range r.Committed() {
		id, err := gocql.ParseUUID(cm.AggregateID)
		require.NoError(t, err)
		acked = append(acked, accounting.Acked{AggregateID: id, Version: cm.Version})
	}
	return acked
}

// clusterDemo is the README's demo through one address: a customer, an
// order through its lifecycle, a refused command, reads with min_version.
// hosts, when set, names the Host header of commands and queries (the
// Ingress splits them by host).
func clusterDemo(t *testing.T, cmdURL, qryURL string, hosts map[string]string) []accounting.Acked {
	t.Helper()
	c := NewClient(t)
	var cmdH, qryH []string
	if hosts != nil {
		cmdH, qryH = []string{"Host", hosts["commands"]}, []string{"Host", hosts["queries"]}
	}
	var acked []accounting.Acked
	command := func(path string, body any) (string, int64) {
		t.Helper()
		a := c.DoHost("POST", cmdURL+path, body, cmdH...)
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.Status, "POST %s: %s", path, a.Body)
		m := a.JSON(t)
		id, v := m["id"].(string), int64(m["version"].(float64))
		acked = append(acked, accounting.Acked{AggregateID: mustUUID(t, id), Version: v})
		return id, v
	}
	customer, _ := command("/v1/customers", map[string]any{"name": "Ada Lovelace", "email": "ada@example.org"})
	_, v := command("/v1/customers/"+customer+"/addresses", map[string]any{"label": "home", "line1": "12 St James Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"})
	require.EqualValues(t, 2, v)
	items := []map[string]any{{"product_id": "analytical-engine", "quantity": 1, "unit_price": map[string]any{"amount_minor": 99900, "currency": "GBP"}}}
	order, _ := command("/v1/orders", map[string]any{"customer_id": customer, "items": items})
	command("/v1/orders/"+order+"/confirm", nil)
	command("/v1/orders/"+order+"/ship", map[string]any{"carrier": "Royal Mail", "tracking_number": "RM123456789GB"})
	_, v = command("/v1/orders/"+order+"/deliver", map[string]any{"signature": "A. Lovelace"})
	require.EqualValues(t, 4, v)

	rejected := c.DoHost("POST", cmdURL+"/v1/orders/"+order+"/cancel", map[string]any{"reason": "too late", "cancelled_by": "customer"}, cmdH...)
	require.Contains(t, []int{http.StatusConflict, http.StatusUnprocessableEntity}, rejected.Status, "%s", rejected.Body)
	require.Equal(t, "application/problem+json", rejected.Header.Get("Content-Type"))
	require.NotEmpty(t, rejected.JSON(t)["code"])

	o := c.DoHost("GET", qryURL+"/v1/orders/"+order+"?min_version=4", nil, qryH...)
	require.Equal(t, http.StatusOK, o.Status, "%s", o.Body)
	require.Equal(t, "DELIVERED", o.JSON(t)["status"])
	cu := c.DoHost("GET", qryURL+"/v1/customers/"+customer+"?min_version=2", nil, qryH...)
	require.Equal(t, http.StatusOK, cu.Status, "%s", cu.Body)
	require.Equal(t, "Ada Lovelace", cu.JSON(t)["name"])
	require.Eventually(t, func() bool {
		a := c.DoHost("GET", qryURL+"/v1/customers/"+customer+"/orders", nil, qryH...)
		return a.Status == http.StatusOK && strings.Contains(string(a.Body), order)
	}, time.Minute, 200*time.Millisecond, "the customer's orders")
	return acked
}

// DoHost is Do with optional header pairs, of which Host sets the
// request's host.
func (c *Client) DoHost(method, url string, body any, header ...string) Answer {
	c.t.Helper()
	var rest []string
	host := ""
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			host = header[i+1]
			continue
		}
		rest = append(rest, header[i], header[i+1])
	}
	if host == "" {
		return c.Do(method, url, body, rest...)
	}
	orig := c.http.Transport
	defer func() { c.http.Transport = orig }()
	c.http.Transport = hostTransport{host: host}
	return c.Do(method, url, body, rest...)
}

type hostTransport struct{ host string }

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return http.DefaultTransport.RoundTrip(r)
}

var dashboardVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// clusterPrometheusChecks: Prometheus scrapes every pod of the release,
// loads the chart's PrometheusRule groups, and every query of every
// dashboard panel returns data.
func clusterPrometheusChecks(t *testing.T, c *cluster) {
	// The PrometheusRule's groups as a rule file, then a reload.
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	c.kubeJSON(&rule, "-n", clusterNamespace, "get", "prometheusrule", clusterRelease)
	require.NotEmpty(t, rule.Spec.Groups)
	doc, err := json.Marshal(map[string]any{"groups": rule.Spec.Groups})
	require.NoError(t, err)
	dir := filepath.Join(c.root, ".cache", "cluster", "run", "prometheus", "rules")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "orderstream.yaml"), doc, 0o644))
	resp, err := http.Post(clusterPrometheus+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(clusterPrometheus + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []any  `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	get("/api/v1/rules", &rules)
	loaded := 0
	for _, g := range rules.Data.Groups {
		loaded += len(g.Rules)
	}
	want := 0
	for _, g := range rule.Spec.Groups {
		want += len(g.(map[string]any)["rules"].([]any))
	}
	require.Equal(t, want, loaded, "every rule of the PrometheusRule is loaded")

	// Every pod of the release is a target that is up.
	var pods podList
	c.kubeJSON(&pods, "-n", clusterNamespace, "get", "pods", "-l", "app.kubernetes.io/instance="+clusterRelease, "--field-selector=status.phase=Running")
	deployed := 0
	for _, p := range pods.Items {
		if p.Metadata.Labels["app.kubernetes.io/name"] != "schema-migrator" {
			deployed++
		}
	}
	require.Eventually(t, func() bool {
		var q promResult
		get("/api/v1/query?query="+urlQuery(`up{namespace="orderstream"} == 1`), &q)
		return len(q.Data.Result) >= deployed
	}, 2*time.Minute, 2*time.Second, "Prometheus scrapes every pod (%d)", deployed)

	// Every panel's query, with the dashboards' variables filled in,
	// returns data.
	files, err := filepath.Glob(filepath.Join(c.root, "charts", "orderstream", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	vars := map[string]string{"namespace": clusterNamespace, "__rate_interval": "1m", "__interval": "15s", "interval": "1m", "job": ".+", "pod": ".+", "datasource": ""}
	// A counter's rate needs two samples: the panels of what the test did
	// last get up to a minute to show it.
	var empty []string
	queries := 0
	deadline := time.Now().Add(time.Minute)
	start := time.Now()
	for {
		empty, queries = dashboardQueries(t, files, vars, get)
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		t.Logf("after %s, %d queries without data yet, the first: %s", time.Since(start).Round(time.Second), len(empty), empty[0])
		time.Sleep(5 * time.Second)
	}
	t.Logf("%d dashboard queries, %d without data", queries, len(empty))
	if len(empty) > 0 {
		// Said last too (after the cluster's state), where a CI summary
		// that keeps only the end of the output still shows it.
		c.failures = append(c.failures, "panels without data:\n"+strings.Join(empty, "\n"))
	}
	require.Empty(t, empty, "panels without data")
}

// dashboardQueries runs every panel's query of the dashboards in files,
// with the variables filled in, and lists those without data.
func dashboardQueries(t *testing.T, files []string, vars map[string]string, get func(string, any)) (empty []string, queries int) {
	t.Helper()
	for _, f := range files {
		var dash struct {
			Panels []dashPanel `json:"panels"`
		}
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &dash))
		for _, p := range flatten(dash.Panels) {
			for _, target := range p.Targets {
				if target.Expr == "" {
					continue
				}
				expr := dashboardVar.ReplaceAllStringFunc(target.Expr, func(m string) string {
					name := dashboardVar.FindStringSubmatch(m)[1]
					if v, ok := vars[name]; ok {
						return v
					}
					return m
				})
				queries++
				var q promResult
				get("/api/v1/query?query="+urlQuery(expr), &q)
				if len(q.Data.Result) == 0 {
					empty = append(empty, fmt.Sprintf("%s %q: %s", filepath.Base(f), p.Title, expr))
				}
			}
		}
	}
	return empty, queries
}

type promResult struct {
	Data struct {
		Result []any `json:"result"`
	} `json:"data"`
}

type dashPanel struct {
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func flatten(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// clusterDeadLetters drives the dlq-service's API through the Gateway the
// way an operator would, so that the DLQ panels have something to show:
// an event the relay cannot publish (its payload is not JSON, as a bug or
// a hand edit would leave it) is dead-lettered and parks its order; a
// retry fails while the payload is still bad; with the relay scaled to
// zero a retry stays pending past dlq.retry_timeout (202, unresolved);
// once the payload is repaired a retry succeeds and the order is
// published again. A second bad event is purged by skipping it.
func clusterDeadLetters(t *testing.T, c *cluster, session *gocql.Session, store *eventstore.Store) {
	token, err := base64.StdEncoding.DecodeString(c.kube("-n", clusterNamespace, "get", "secret", clusterRelease+"-dlq-service", "-o", "jsonpath={.data.token}"))
	require.NoError(t, err)
	require.NotEmpty(t, token)
	api := NewClient(t)
	auth := []string{"Authorization", "Bearer " + string(token), "X-Requested-By", "cluster-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// poison creates an order through the Gateway, appends an event whose
	// payload is not JSON behind it, and waits for its dead letter.
	poison := func() (order gocql.UUID, dlq string) {
		t.Helper()
		customer := api.Do("POST", clusterGateway+"/v1/customers", map[string]any{"name": "Poison", "email": "poison@example.org"})
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, customer.Status, "%s", customer.Body)
		items := []map[string]any{{"product_id": "p", "quantity": 1, "unit_price": map[string]any{"amount_minor": 100, "currency": "EUR"}}}
		a := api.Do("POST", clusterGateway+"/v1/orders", map[string]any{"customer_id": customer.JSON(t)["id"], "items": items})
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.Status, "%s", a.Body)
		order = mustUUID(t, a.JSON(t)["id"].(string))
		_, err := store.Append(ctx, "order", order, 1, []eventstore.Event{{EventID: gocql.MustRandomUUID(), Type: "OrderConfirmed", Version: 1, Data: []byte(`{"not json`)}})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			l := api.Do("GET", clusterGateway+"/v1/dlq?component=relay", nil)
			if l.Status != http.StatusOK {
				return false
			}
			var body struct {
				Entries []struct {
					ID          string `json:"id"`
					AggregateID string `json:"aggregate_id"`
				} `json:"entries"`
			}
			require.NoError(t, json.Unmarshal(l.Body, &body))
			for _, e := range body.Entries {
				if e.AggregateID == order.String() {
					dlq = e.ID
					return true
				}
			}
			return false
		}, 2*time.Minute, time.Second, "the relay dead-letters the event of order %s", order)
		t.Logf("order %s: dead letter %s", order, dlq)
		return order, dlq
	}
	retry := func(dlq string, status int) map[string]any {
		t.Helper()
		a := api.Do("POST", clusterGateway+"/v1/dlq/"+dlq+"/retry", nil, auth...)
		require.Equal(t, status, a.Status, "%s", a.Body)
		return a.JSON(t)
	}

	order, dlq := poison()
	require.Equal(t, "failed", retry(dlq, http.StatusOK)["status"], "the payload is still bad")

	// No relay running: nobody answers the request within the timeout.
	relay := "deployment/" + clusterRelease + "-cdc-relay"
	replicas := c.kube("-n", clusterNamespace, "get", relay, "-o", "jsonpath={.spec.replicas}")
	c.kube("-n", clusterNamespace, "scale", relay, "--replicas=0")
	require.Eventually(t, func() bool {
		out, err := c.try(time.Minute, c.kubectl, "-n", clusterNamespace, "get", "pods", "-l", "app.kubernetes.io/name=cdc-relay", "-o", "name")
		return err == nil && strings.TrimSpace(out) == ""
	}, 2*time.Minute, time.Second, "the relay's pods are gone")
	require.Equal(t, "pending", retry(dlq, http.StatusAccepted)["status"])
	c.kube("-n", clusterNamespace, "scale", relay, "--replicas="+replicas)
	c.waitAllReady(5 * time.Minute)
	// The relay that takes the lease carries the pending request out (it
	// fails again: the payload is still bad).
	require.Eventually(t, func() bool {
		a := api.Do("GET", clusterGateway+"/v1/dlq/"+dlq, nil)
		return a.Status == http.StatusOK && a.JSON(t)["pending_request"] == nil
	}, 3*time.Minute, time.Second, "the pending request is carried out")

	// Repaired, the event is published and the order no longer parked.
	require.NoError(t, eventstoretest.ReplaceEventData(ctx, session, order, 2, []byte(`{}`)))
	out := retry(dlq, http.StatusOK)
	require.Equal(t, "succeeded", out["status"], "%v", out)
	require.Equal(t, http.StatusNotFound, api.Do("GET", clusterGateway+"/v1/dlq/"+dlq, nil).Status, "the dead letter is resolved")

	// Purged: its relay moves past the event (a parked head is skipped,
	// not deleted).
	_, dlq = poison()
	a := api.Do("DELETE", clusterGateway+"/v1/dlq/"+dlq, nil, auth...)
	require.Equal(t, http.StatusConflict, a.Status, "a parked head is not deleted without skip: %s", a.Body)
	a = api.Do("DELETE", clusterGateway+"/v1/dlq/"+dlq+"?skip=true", nil, auth...)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	require.Equal(t, true, a.JSON(t)["purged"], "%s", a.Body)
}
