// Command dashboards writes orderstream's Grafana dashboards (package
// dashboards) into the umbrella chart, replacing every other JSON file
// there; with -check it only reports whether the files are current.
//
//	go run ./k8s/observability/cmd/dashboards [-out charts/orderstream/dashboards] [-check]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orderstream/orderstream/k8s/observability/dashboards"
)

func main() {
	out := flag.String("out", filepath.Join("charts", "orderstream", "dashboards"), "folder of the dashboards' JSON files")
	check := flag.Bool("check", false, "write nothing; fail if a file differs from a fresh generation")
	flag.Parse()
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	ds, err := dashboards.All()
	if err != nil {
		return err
	}
	want := map[string][]byte{}
	for _, d := range ds {
		want[d.File] = d.JSON
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	var stale []error
	for _, f := range existing {
		if _, ok := want[filepath.Base(f)]; ok {
			continue
		}
		if check {
			stale = append(stale, fmt.Errorf("%s is not generated", f))
		} else if err := os.Remove(f); err != nil {
			return err
		}
	}
	if !check {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, d := range ds {
		path := filepath.Join(dir, d.File)
		if check {
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, d.JSON) {
				stale = append(stale, fmt.Errorf("%s is stale", path))
			}
			continue
		}
		if err := os.WriteFile(path, d.JSON, 0o644); err != nil {
			return err
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w\nregenerate with: go run ./k8s/observability/cmd/dashboards", errors.Join(stale...))
	}
	return nil
}
