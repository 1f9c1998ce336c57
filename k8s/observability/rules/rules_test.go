package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/k8s/observability/catalog"
)

var root = filepath.Join("..", "..", "..")

func load(t *testing.T) []Rule {
	t.Helper()
	rs, err := Load(filepath.Join(root, "charts", "orderstream", "rules"))
	require.NoError(t, err)
	require.NotEmpty(t, rs)
	return rs
}

// Every rule parses, selects only registered (or listed external)
// metrics with the labels they have, and its annotations name only labels
// its result keeps.
func TestRulesUseRegisteredMetrics(t *testing.T) {
	c, err := catalog.Default()
	require.NoError(t, err)
	for _, r := range load(t) {
		name := r.Alert + r.Record
		t.Run(name, func(t *testing.T) {
			res, err := c.Check(r.Expr)
			require.NoError(t, err)
			if res.Labels == nil {
				return
			}
			for k, v := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(v, -1) {
					require.True(t, res.Labels[m[1]], "annotation %s names $labels.%s, which the result of %q does not keep", k, m[1], r.Expr)
				}
			}
		})
	}
}

var labelRef = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)

// Every alert has a severity, a summary, a description and a runbook
// section of its own name in docs/runbook.md.
func TestAlertsHaveRunbookSections(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(root, "docs", "runbook.md"))
	require.NoError(t, err)
	headings := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			headings[strings.TrimSpace(h)] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range load(t) {
		if r.Alert == "" {
			continue
		}
		require.False(t, seen[r.Alert], "%s is defined twice", r.Alert)
		seen[r.Alert] = true
		require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.NotEmpty(t, r.Annotations["description"], r.Alert)
		require.True(t, headings[r.Alert], "docs/runbook.md has no section \"## %s\"", r.Alert)
		require.True(t, strings.HasSuffix(r.Annotations["runbook_url"], "docs/runbook.md#"+strings.ToLower(r.Alert)),
			"%s: runbook_url %q does not point at its section", r.Alert, r.Annotations["runbook_url"])
	}
	for h := range headings {
		if strings.HasPrefix(h, "Orderstream") {
			require.True(t, seen[h], "docs/runbook.md has a section for %s, which is no alert", h)
		}
	}
}

// The pod alerts pick the services by container and job name, which are
// the services' names: each must match every service that registers
// metrics.
func TestPodAlertsCoverEveryService(t *testing.T) {
	reg, err := catalog.LoadRegistered()
	require.NoError(t, err)
	matcher := regexp.MustCompile(`(container|job)=~"([^"]+)"`)
	n := 0
	for _, r := range load(t) {
		for _, m := range matcher.FindAllStringSubmatch(r.Expr, -1) {
			n++
			re := regexp.MustCompile("^(?:" + m[2] + ")$")
			for svc := range reg {
				require.True(t, re.MatchString(svc), "%s: %s=~%q does not match %s", r.Alert, m[1], m[2], svc)
			}
		}
	}
	require.Positive(t, n)
}

// Every alert has a promtool unit test.
func TestEveryAlertIsUnitTested(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "orderstream.test.yaml"))
	require.NoError(t, err)
	for _, r := range load(t) {
		if r.Alert != "" {
			require.Contains(t, string(body), "alertname: "+r.Alert+"\n", "no promtool test of %s", r.Alert)
		}
	}
}
