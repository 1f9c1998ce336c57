// Package rules reads orderstream's Prometheus alert rules
// (charts/orderstream/rules/*.yaml) with Prometheus' own rule file parser.
// Its tests check every rule against the metrics the services register
// (package catalog) and against docs/runbook.md; `make check-deploy` runs
// promtool's checks and the unit tests of testdata/orderstream.test.yaml.
package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Rule is one rule and the file it is in.
type Rule struct {
	File string
	rulefmt.Rule
}

// Load parses every *.yaml rule file of dir.
func Load(dir string) ([]Rule, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no rule files in %s", dir)
	}
	var out []Rule
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				out = append(out, Rule{File: f, Rule: r})
			}
		}
	}
	return out, nil
}
