// Package benchkit holds what the bench commands share: a migrated
// keyspace of their own, percentiles, and the verdict lines of a table.
package benchkit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/cql"
	"github.com/orderstream/orderstream/pkg/migrate"
)

// PrepareKeyspace migrates cfg.Keyspace with the repository's schema,
// dropping it first when fresh is set.
func PrepareKeyspace(ctx context.Context, cfg cql.Config, fresh bool) error {
	s, err := cql.Connect(ctx, cfg, "", zerolog.Nop())
	if err != nil {
		return err
	}
	defer s.Close()
	if fresh {
		// Dropping a big keyspace can outlast the client timeout; the
		// statement is idempotent, so it is simply asked again.
		var err error
		for range 6 {
			if err = s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).WithContext(ctx).Exec(); err == nil {
				break
			}
			time.Sleep(5 * time.Second)
		}
		if err != nil {
			return fmt.Errorf("dropping keyspace %s: %w", cfg.Keyspace, err)
		}
	}
	flavour, err := cql.DetectFlavour(ctx, s)
	if err != nil {
		return err
	}
	dir, err := schemaDir()
	if err != nil {
		return err
	}
	migs, err := migrate.Load(os.DirFS(dir), flavour, cfg.Keyspace)
	if err != nil {
		return err
	}
	_, err = migrate.New(s, cfg.Keyspace, flavour, migrate.DefaultConfig(), zerolog.Nop()).Apply(ctx, migs)
	return err
}

// schemaDir finds the repository's schema/ folder from the working directory.
func schemaDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(dir + "/go.work"); err == nil {
			return dir + "/schema", nil
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 0)]
		if parent == "" || parent == dir {
			return "", fmt.Errorf("go.work not found above the working directory")
		}
		dir = parent
	}
}

// Pct is the p-quantile (0..1) of sorted durations; zero when empty.
func Pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Ratio is a/b, zero when b is.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Ms prints a duration in milliseconds with two decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Check prints one verdict line: got against a limit it must stay at or
// below (atMost) or at or above.
func Check(what string, got, limit float64, atMost bool) {
	ok := got <= limit
	cmp := "≤"
	if !atMost {
		ok, cmp = got >= limit, "≥"
	}
	verdict := "met"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Printf("%-66s %.2f (target %s %.2f) %s\n", what, got, cmp, limit, verdict)
}

// HistogramMean is the mean of the first histogram called name in reg;
// zero when there is none or it is empty.
func HistogramMean(reg *prometheus.Registry, name string) time.Duration {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() == 0 {
			return 0
		}
		return time.Duration(h.GetSampleSum() / float64(h.GetSampleCount()) * float64(time.Second))
	}
	return 0
}
