package admin

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// DescriptorsPath serves every metric the process has registered, observed
// or not. /metrics leaves out a vector that has no child yet (a histogram
// by route before the first request, say), so dashboards and alert rules
// are checked against this list instead (k8s/observability).
const DescriptorsPath = "/metrics/descriptors"

// Descriptor describes one registered metric.
type Descriptor struct {
	Name string `json:"name"`
	// Type is counter, gauge, histogram, summary or untyped when the metric
	// has a sample, and empty for a vector that has no child yet: a
	// descriptor does not carry its metric's type.
	Type        string            `json:"type,omitempty"`
	Help        string            `json:"help"`
	Labels      []string          `json:"labels,omitempty"`
	ConstLabels map[string]string `json:"const_labels,omitempty"`
}

// Descriptors lists what c describes, by name, with the types that g's
// samples show. With a *prometheus.Registry as both, that is every metric
// registered on it.
func Descriptors(c prometheus.Collector, g prometheus.Gatherer) ([]Descriptor, error) {
	types := map[string]string{}
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering metrics: %w", err)
	}
	for _, f := range families {
		types[f.GetName()] = strings.ToLower(f.GetType().String())
	}

	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var out []Descriptor
	var errs []error
	for d := range ch {
		desc, err := parseDesc(d.String())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		desc.Type = types[desc.Name]
		out = append(out, desc)
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseDesc reads the fields of a Desc from its String form, the only way
// client_golang shows them:
//
//	Desc{fqName: "n", help: "h", unit: "", constLabels: {a="b"}, variableLabels: {c,d}}
func parseDesc(s string) (Descriptor, error) {
	var d Descriptor
	bad := func(what string) (Descriptor, error) {
		return Descriptor{}, fmt.Errorf("reading metric descriptor %s: no %s", s, what)
	}
	name, ok := quotedAfter(s, "fqName: ")
	if !ok {
		return bad("fqName")
	}
	d.Name = name
	if d.Help, ok = quotedAfter(s, "help: "); !ok {
		return bad("help")
	}
	if body, ok := braced(s, "constLabels: {"); ok {
		for body != "" {
			eq := strings.IndexByte(body, '=')
			if eq < 0 {
				return bad("constant label value")
			}
			val, err := strconv.QuotedPrefix(body[eq+1:])
			if err != nil {
				return bad("constant label value")
			}
			if d.ConstLabels == nil {
				d.ConstLabels = map[string]string{}
			}
			d.ConstLabels[body[:eq]], _ = strconv.Unquote(val)
			body = strings.TrimPrefix(body[eq+1+len(val):], ",")
		}
	}
	if body, ok := braced(s, "variableLabels: {"); ok && body != "" {
		for _, l := range strings.Split(body, ",") {
			// A constrained label shows as c(name).
			if strings.HasPrefix(l, "c(") && strings.HasSuffix(l, ")") {
				l = l[2 : len(l)-1]
			}
			d.Labels = append(d.Labels, l)
		}
	}
	return d, nil
}

// quotedAfter returns the Go-quoted string that follows key in s.
func quotedAfter(s, key string) (string, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return "", false
	}
	q, err := strconv.QuotedPrefix(s[i+len(key):])
	if err != nil {
		return "", false
	}
	v, err := strconv.Unquote(q)
	return v, err == nil
}

// braced returns what lies between key (ending in "{") and the next "}"
// outside a quoted string.
func braced(s, key string) (string, bool) {
	i := strings.Index(s, key)
	if i < 0 {
		return "", false
	}
	rest := s[i+len(key):]
	for j := 0; j < len(rest); j++ {
		switch rest[j] {
		case '"':
			q, err := strconv.QuotedPrefix(rest[j:])
			if err != nil {
				return "", false
			}
			j += len(q) - 1
		case '}':
			return rest[:j], true
		}
	}
	return "", false
}

func descriptorsHandler(c prometheus.Collector, g prometheus.Gatherer) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		descs, err := Descriptors(c, g)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, descs)
	}
}
