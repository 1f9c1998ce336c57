// Package catalog knows which metrics the services register, and checks
// PromQL queries (dashboards, alert rules) against it: every query must
// parse, select only metrics a service really registers (or one of the few
// external ones listed here), match and group by labels those metrics
// carry, and a legend may only name labels the query's result keeps.
//
// The list of registered metrics is registered.json, written by this
// package's test from the services themselves: it starts every service
// binary against the local stack and reads GET /metrics/descriptors from
// its admin server, which lists every descriptor of the process's registry
// (observed or not). CI runs that test, so the file cannot drift from the
// code; `go test ./k8s/observability/catalog -run TestRegistered -update`
// rewrites it.
package catalog

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/orderstream/orderstream/pkg/admin"
)

//go:embed registered.json
var registeredJSON []byte

// Registered maps each service to the metrics its process registers.
type Registered map[string][]admin.Descriptor

// LoadRegistered returns the committed registered.json.
func LoadRegistered() (Registered, error) {
	var r Registered
	if err := json.Unmarshal(registeredJSON, &r); err != nil {
		return nil, fmt.Errorf("reading registered.json: %w", err)
	}
	return r, nil
}

// TargetLabels are the labels Prometheus adds to every scraped series of a
// pod: the Prometheus Operator's ServiceMonitor and PodMonitor set job,
// instance, namespace, pod, container, service and endpoint.
var TargetLabels = []string{"job", "instance", "namespace", "pod", "container", "service", "endpoint"}

// External are the only metrics the queries may use that no orderstream
// service registers, with their labels: kube-state-metrics' restart
// counter (the pod-restart alert and panels; kube-state-metrics must run in
// the cluster) and Prometheus' own `up` of every target.
var External = map[string][]string{
	"kube_pod_container_status_restarts_total": {"namespace", "pod", "container", "uid"},
	"up": nil,
}

// Metric is one metric the queries may select.
type Metric struct {
	Name     string
	Type     string          // counter, gauge, histogram, …; empty when unknown
	Labels   map[string]bool // variable, constant and target labels
	Services []string        // who registers it; empty for an external metric
}

// Catalog is the set of metrics the queries may select.
type Catalog struct {
	metrics map[string]*Metric
	parser  parser.Parser
}

// New builds the catalogue of what the services register, plus External.
func New(reg Registered) (*Catalog, error) {
	c := &Catalog{metrics: map[string]*Metric{}, parser: parser.NewParser(parser.Options{})}
	for _, svc := range slices.Sorted(maps.Keys(reg)) {
		for _, d := range reg[svc] {
			m := c.metrics[d.Name]
			if m == nil {
				m = &Metric{Name: d.Name, Labels: labelSet(TargetLabels)}
				c.metrics[d.Name] = m
			}
			if d.Type != "" {
				if m.Type != "" && m.Type != d.Type {
					return nil, fmt.Errorf("%s is a %s in one service and a %s in %s", d.Name, m.Type, d.Type, svc)
				}
				m.Type = d.Type
			}
			for _, l := range d.Labels {
				m.Labels[l] = true
			}
			for l := range d.ConstLabels {
				m.Labels[l] = true
			}
			m.Services = append(m.Services, svc)
		}
	}
	for name, ls := range External {
		if _, dup := c.metrics[name]; dup {
			return nil, fmt.Errorf("%s is registered by a service and listed as external", name)
		}
		m := &Metric{Name: name, Labels: labelSet(TargetLabels)}
		for _, l := range ls {
			m.Labels[l] = true
		}
		c.metrics[name] = m
	}
	return c, nil
}

// Default is the catalogue of the committed registered.json.
func Default() (*Catalog, error) {
	reg, err := LoadRegistered()
	if err != nil {
		return nil, err
	}
	return New(reg)
}

func labelSet(ls []string) map[string]bool {
	s := make(map[string]bool, len(ls))
	for _, l := range ls {
		s[l] = true
	}
	return s
}

// Lookup resolves a series name as a query names it: a registered metric,
// or a histogram's _bucket (which adds le), _sum or _count. A descriptor
// does not carry its metric's type, so a metric never observed when the
// catalogue was written (a histogram vector with no child yet) has no
// known type; its suffixes are accepted, and only a known counter or gauge
// refuses them.
func (c *Catalog) Lookup(name string) (*Metric, map[string]bool, bool) {
	if m, ok := c.metrics[name]; ok {
		return m, m.Labels, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		m, ok := c.metrics[base]
		if !ok || len(m.Services) == 0 {
			return nil, nil, false
		}
		if m.Type != "" && m.Type != "histogram" && (m.Type != "summary" || suffix == "_bucket") {
			return nil, nil, false
		}
		ls := maps.Clone(m.Labels)
		if suffix == "_bucket" {
			ls["le"] = true
		}
		return m, ls, true
	}
	return nil, nil, false
}

// grafanaIntervals stand in for Grafana's interval macros, which are not
// PromQL; any duration parses the same.
var grafanaIntervals = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "1h", "$__range", "1h",
)

// Result is what Check learnt of a query.
type Result struct {
	// Metrics are the series names the query selects.
	Metrics []string
	// Labels are the labels of the query's result series, or nil when they
	// cannot be told (a function the analysis does not follow).
	Labels map[string]bool
}

// Check parses expr (Grafana's interval macros allowed) and checks it
// against the catalogue.
func (c *Catalog) Check(expr string) (Result, error) {
	var res Result
	e, err := c.parser.ParseExpr(grafanaIntervals.Replace(expr))
	if err != nil {
		return res, fmt.Errorf("parsing %q: %w", expr, err)
	}
	a := analysis{c: c}
	res.Labels = a.labels(e)
	res.Metrics = slices.Sorted(maps.Keys(a.metrics))
	if len(res.Metrics) == 0 && len(a.errs) == 0 {
		a.errs = append(a.errs, errors.New("selects no metric"))
	}
	if err := errors.Join(a.errs...); err != nil {
		return res, fmt.Errorf("%s: %w", expr, err)
	}
	return res, nil
}

type analysis struct {
	c       *Catalog
	metrics map[string]bool
	errs    []error
}

func (a *analysis) errorf(format string, args ...any) {
	a.errs = append(a.errs, fmt.Errorf(format, args...))
}

// need reports labels of ls missing from have, if have is known.
func (a *analysis) need(what string, ls []string, have map[string]bool) {
	if have == nil {
		return
	}
	for _, l := range ls {
		if !have[l] {
			a.errorf("%s %q: no such label on %s", what, l, sortedKeys(have))
		}
	}
}

func sortedKeys(s map[string]bool) string {
	ks := slices.Sorted(maps.Keys(s))
	return "{" + strings.Join(ks, ",") + "}"
}

// labels returns the label names of e's result series (nil: unknown) and
// records the metrics and errors found on the way.
func (a *analysis) labels(e parser.Expr) map[string]bool {
	switch e := e.(type) {
	case *parser.VectorSelector:
		return a.selector(e)
	case *parser.MatrixSelector:
		return a.labels(e.VectorSelector)
	case *parser.SubqueryExpr:
		return a.labels(e.Expr)
	case *parser.ParenExpr:
		return a.labels(e.Expr)
	case *parser.UnaryExpr:
		return a.labels(e.Expr)
	case *parser.StepInvariantExpr:
		return a.labels(e.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}
	case *parser.AggregateExpr:
		if e.Param != nil {
			a.labels(e.Param)
		}
		inner := a.labels(e.Expr)
		a.need(e.Op.String()+" by", e.Grouping, inner)
		switch {
		case e.Op == parser.TOPK || e.Op == parser.BOTTOMK || e.Op == parser.LIMITK || e.Op == parser.LIMIT_RATIO:
			return inner
		case e.Without:
			if inner == nil {
				return nil
			}
			out := maps.Clone(inner)
			for _, l := range e.Grouping {
				delete(out, l)
			}
			return out
		default:
			out := labelSet(e.Grouping)
			if e.Op == parser.COUNT_VALUES {
				if s, ok := e.Param.(*parser.StringLiteral); ok {
					out[s.Val] = true
				}
			}
			return out
		}
	case *parser.BinaryExpr:
		lhs, rhs := a.labels(e.LHS), a.labels(e.RHS)
		if e.LHS.Type() != parser.ValueTypeVector {
			return rhs
		}
		if e.RHS.Type() != parser.ValueTypeVector {
			return lhs
		}
		return a.binary(e, lhs, rhs)
	case *parser.Call:
		return a.call(e)
	default:
		a.errorf("unexpected expression %T", e)
		return nil
	}
}

// binary returns the labels of a binary operation between two vectors, as
// Prometheus' engine builds them: set operators keep the left side's (or
// either side's, for or); one-to-one matching keeps the on() labels, or the
// left side's without the ignoring() ones; group_left/right keeps the
// "many" side's labels plus the included ones.
func (a *analysis) binary(e *parser.BinaryExpr, lhs, rhs map[string]bool) map[string]bool {
	vm := e.VectorMatching
	if vm == nil {
		vm = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	if vm.On {
		a.need("on", vm.MatchingLabels, lhs)
		a.need("on", vm.MatchingLabels, rhs)
	}
	switch {
	case e.Op == parser.LOR:
		if lhs == nil || rhs == nil {
			return nil
		}
		out := maps.Clone(lhs)
		maps.Copy(out, rhs)
		return out
	case e.Op.IsSetOperator():
		return lhs
	case vm.Card == parser.CardOneToOne:
		if lhs == nil {
			return nil
		}
		if vm.On {
			return labelSet(vm.MatchingLabels)
		}
		out := maps.Clone(lhs)
		for _, l := range vm.MatchingLabels {
			delete(out, l)
		}
		return out
	default:
		many, one := lhs, rhs
		if vm.Card == parser.CardOneToMany {
			many, one = rhs, lhs
		}
		a.need("group_left/group_right", vm.Include, one)
		if many == nil {
			return nil
		}
		out := maps.Clone(many)
		for _, l := range vm.Include {
			out[l] = true
		}
		return out
	}
}

func (a *analysis) selector(v *parser.VectorSelector) map[string]bool {
	name := v.Name
	for _, m := range v.LabelMatchers {
		if m.Name == "__name__" {
			if m.Type.String() != "=" {
				a.errorf("metric name matcher %s: select metrics by exact name", m)
				return nil
			}
			name = m.Value
		}
	}
	if name == "" {
		a.errorf("selector %s names no metric", v)
		return nil
	}
	if a.metrics == nil {
		a.metrics = map[string]bool{}
	}
	a.metrics[name] = true
	_, ls, ok := a.c.Lookup(name)
	if !ok {
		a.errorf("%s is not a metric any service registers (nor a known external one)", name)
		return nil
	}
	for _, lm := range v.LabelMatchers {
		if lm.Name != "__name__" && !ls[lm.Name] {
			a.errorf("%s{%s}: %s has no label %q; it has %s", name, lm, name, lm.Name, sortedKeys(ls))
		}
	}
	return maps.Clone(ls)
}

// sameLabels are functions whose result keeps the labels of their first
// series argument.
var sameLabels = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"resets": true, "changes": true, "abs": true, "ceil": true, "floor": true, "round": true,
	"clamp": true, "clamp_min": true, "clamp_max": true, "exp": true, "ln": true, "log2": true,
	"log10": true, "sqrt": true, "sgn": true, "predict_linear": true, "timestamp": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "quantile_over_time": true, "stddev_over_time": true,
	"stdvar_over_time": true, "last_over_time": true, "present_over_time": true, "sort": true, "sort_desc": true, "holt_winters": true,
	"double_exponential_smoothing": true,
}

func (a *analysis) call(c *parser.Call) map[string]bool {
	args := make([]map[string]bool, len(c.Args))
	for i, arg := range c.Args {
		args[i] = a.labels(arg)
	}
	first := func() map[string]bool {
		for i, arg := range c.Args {
			if t := arg.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				return args[i]
			}
		}
		return map[string]bool{}
	}
	switch name := c.Func.Name; {
	case sameLabels[name]:
		return first()
	case name == "histogram_quantile":
		ls := first()
		if ls == nil {
			return nil
		}
		if !ls["le"] {
			a.errorf("histogram_quantile over series without le (not a _bucket series): %s", c)
		}
		out := maps.Clone(ls)
		delete(out, "le")
		return out
	case name == "label_replace":
		ls := first()
		if ls == nil {
			return nil
		}
		out := maps.Clone(ls)
		if s, ok := c.Args[1].(*parser.StringLiteral); ok {
			out[s.Val] = true
		}
		return out
	case name == "vector", name == "time", name == "scalar", name == "pi":
		return map[string]bool{}
	default:
		// absent(), label_join and the rest: the labels are not followed.
		return nil
	}
}

// LegendLabels returns the labels a Grafana legend format names
// ({{label}}).
func LegendLabels(format string) []string {
	var out []string
	for {
		i := strings.Index(format, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(format[i:], "}}")
		if j < 0 {
			break
		}
		out = append(out, strings.TrimSpace(format[i+2:i+j]))
		format = format[i+j+2:]
	}
	sort.Strings(out)
	return slices.Compact(out)
}
