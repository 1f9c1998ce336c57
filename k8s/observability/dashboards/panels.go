package dashboards

//lint:file-ignore SA1019 See dashboards.go: Grafana's sidecar provisioning reads the v1 dashboard schema.

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// datasource is the dashboards' Prometheus: the ${datasource} variable, so
// that the same JSON works in any Grafana.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// q is one query of a panel: PromQL (Grafana's interval macros allowed)
// and its legend.
type q struct {
	expr, legend string
}

// sel renders a selector's matchers for the dashboard's scope: the
// namespace, plus the job of the service for a service dashboard, plus
// extra matchers.
type scope struct {
	job bool // the dashboard has a $job variable (one service)
}

// m returns the label matchers of a selector of metric.
func (s scope) m(metric string, extra ...string) string {
	ms := []string{`namespace="$namespace"`}
	if s.job {
		ms = append(ms, `job=~"$job"`, `pod=~"$pod"`)
	}
	ms = append(ms, extra...)
	return metric + "{" + strings.Join(ms, ", ") + "}"
}

func targets(qs []q) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, x := range qs {
		b := prometheus.NewDataqueryBuilder().
			Expr(x.expr).
			LegendFormat(x.legend).
			RefId(string(rune('A' + i))).
			Datasource(datasource)
		out = append(out, b)
	}
	return out
}

// graph is a time series panel.
func graph(title, desc, unit string, qs ...q) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(datasource).
		Unit(unit).
		Targets(targets(qs)).
		Height(8).
		Span(8).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
}

// wide makes a panel span half of the row.
func wide(p *timeseries.PanelBuilder) *timeseries.PanelBuilder { return p.Span(12) }

// thresholds colours values at or above each step; the first colour is
// the base.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		ts = append(ts, dashboard.Threshold{Value: cog.ToPtr(toFloat(steps[i])), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	default:
		panic(fmt.Sprintf("threshold value %v", v))
	}
}

// single is a stat panel showing one number.
func single(title, desc, unit string, th *dashboard.ThresholdsConfigBuilder, qs ...q) *stat.PanelBuilder {
	p := stat.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(datasource).
		Unit(unit).
		Targets(targets(qs)).
		Height(5).
		Span(6).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
	if th != nil {
		p = p.Thresholds(th)
	}
	return p
}

// breakerMappings names the circuit breaker's states.
var breakerMappings = []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
	Type: dashboard.MappingTypeValueToText,
	Options: map[string]dashboard.ValueMappingResult{
		"0": {Text: cog.ToPtr("closed"), Color: cog.ToPtr("green")},
		"1": {Text: cog.ToPtr("half-open"), Color: cog.ToPtr("orange")},
		"2": {Text: cog.ToPtr("open"), Color: cog.ToPtr("red")},
	},
}}}
