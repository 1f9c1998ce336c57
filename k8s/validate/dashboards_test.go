package validate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDashboardsOfTwoReleases: releases of one name in two namespaces,
// both writing their dashboards into a shared monitoring namespace, own
// ConfigMaps of different names there (the real API server refused the
// second `helm upgrade` with "invalid ownership metadata" when they had
// the same). In the release's own namespace the names stay as they were.
func TestDashboardsOfTwoReleases(t *testing.T) {
	s := setup(t)
	names := func(ns string, extra ...string) map[string]bool {
		args := append([]string{"template", release, filepath.Join(s.charts, umbrella),
			"--namespace", ns, "--kube-version", kubeVersion}, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := s.helm.Run(ctx, args...)
		require.NoError(t, err)
		objs, err := s.decoder.DecodeAll(ns, out)
		require.NoError(t, err)
		got := map[string]bool{}
		for _, o := range objs {
			if o.Kind() == "ConfigMap" && o.Meta.GetLabels()["grafana_dashboard"] == "1" {
				require.LessOrEqual(t, len(o.Meta.GetName()), 63, o.Meta.GetName())
				got[o.Meta.GetNamespace()+"/"+o.Meta.GetName()] = true
			}
		}
		require.NotEmpty(t, got)
		return got
	}
	shared := []string{"--set", "monitoring.dashboards.namespace=monitoring"}
	a, b := names("team-a", shared...), names("team-b", shared...)
	for k := range a {
		require.NotContains(t, b, k, "both releases would own %s", k)
	}
	require.Contains(t, a, "monitoring/team-a-"+release+"-dashboard-overview")

	own := names("team-a")
	require.Contains(t, own, "team-a/"+release+"-dashboard-overview")

	long := names("a-namespace-with-a-rather-long-name-for-its-team", append(shared, "--set", "fullnameOverride=an-orderstream-release-with-a-long-name")...)
	require.Len(t, long, len(a))
}
