package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// rebuildRow is one view's rebuild throughput: the zero-downtime rebuild
// (a new generation, the projector's Rebuild: create the tables, scan,
// switch) against the baseline, the rebuild this repository had before
// generations (truncate the live tables, then replay every aggregate into
// them: the same scan, folds and writes, with no generation to create and
// no switch, and queries seeing missing rows meanwhile).
type rebuildRow struct {
	name       string
	aggregates int64
	// create is the new generation's start (CREATE TABLE, the
	// lightweight transaction), generation its scan and switch.
	create, generation, replace time.Duration
}

// rebuilds measures every view's rebuild over the keyspace's aggregates.
func rebuilds(ctx context.Context, b *bench) ([]rebuildRow, error) {
	var rows []rebuildRow
	for _, v := range []func() (rebuildRow, error){
		func() (rebuildRow, error) { return rebuildThroughput(ctx, b, readmodel.OrderReadModel()) },
		func() (rebuildRow, error) { return rebuildThroughput(ctx, b, readmodel.OrdersByCustomer()) },
		func() (rebuildRow, error) { return rebuildThroughput(ctx, b, readmodel.OrdersByStatus()) },
		func() (rebuildRow, error) { return rebuildThroughput(ctx, b, readmodel.CustomerReadModel()) },
	} {
		r, err := v()
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func rebuildThroughput[S any](ctx context.Context, b *bench, view projector.View[S]) (rebuildRow, error) {
	fmt.Fprintf(os.Stderr, "rebuild: %s\n", view.Name)
	var n int64
	if err := b.store.Heads(ctx, func(h eventstore.Head) error {
		if h.AggregateType == view.AggregateType {
			n++
		}
		return nil
	}); err != nil {
		return rebuildRow{}, err
	}
	replace, err := truncateAndReplay(ctx, b, view)
	if err != nil {
		return rebuildRow{}, err
	}
	cfg := projector.DefaultConfig()
	// No other member consumes: the scan need not wait for one to see the
	// new generation.
	cfg.GenerationRefresh, cfg.GenerationMaxStale = time.Millisecond, time.Millisecond
	cfg.RebuildRate = 0 // unbounded, as the baseline
	p, err := projector.New(cfg, view, b.session, b.store, zerolog.New(os.Stderr).Level(zerolog.WarnLevel), prometheus.NewRegistry())
	if err != nil {
		return rebuildRow{}, err
	}
	start := time.Now()
	if _, err := p.StartRebuild(ctx); err != nil {
		return rebuildRow{}, err
	}
	created := time.Now()
	if err := p.Rebuild(ctx); err != nil { // the started one: scan and switch
		return rebuildRow{}, err
	}
	return rebuildRow{name: view.Name, aggregates: n, create: created.Sub(start), generation: time.Since(created), replace: replace}, nil
}

// truncateAndReplay is the rebuild before generations: TRUNCATE the
// view's tables, then scan event_store by token range (RebuildParallelism
// aggregates at once) and write each aggregate's rows and checkpoint as
// the projector does (projector.Checkpoints).
func truncateAndReplay[S any](ctx context.Context, b *bench, view projector.View[S]) (time.Duration, error) {
	cfg := projector.DefaultConfig()
	start := time.Now()
	for _, t := range view.Tables {
		if err := b.session.Query(`TRUNCATE ` + t).WithContext(ctx).Exec(); err != nil {
			return 0, fmt.Errorf("truncating %s: %w", t, err)
		}
	}
	up := eventcodec.NewUpcasters()
	cps := projector.NewCheckpoints(b.session)
	ids := make(chan gocql.UUID, 256)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ids)
		for _, rg := range eventstore.SplitTokens(cfg.RebuildRanges) {
			if err := b.store.HeadsInRange(gctx, rg, func(h eventstore.Head) error {
				if h.AggregateType == view.AggregateType {
					select {
					case ids <- h.AggregateID:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	for range cfg.RebuildParallelism {
		g.Go(func() error {
			for id := range ids {
				var (
					s   S
					seq int64
				)
				if err := b.store.Events(gctx, id, 0, 0, func(e eventstore.Event) error {
					e, err := up.Upcast(e)
					if err == nil {
						s, err = view.Fold(s, e)
					}
					seq = e.Sequence
					return err
				}); err != nil {
					return err
				}
				state, err := json.Marshal(s)
				if err != nil {
					return err
				}
				if err := cps.Commit(gctx, view.Name+"-replay", id, seq, string(state), func(batch *gocql.Batch) error {
					return view.Write(batch, id, *new(S), false, s, seq)
				}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

func printRebuilds(rows []rebuildRow) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "rebuild\taggregates\tcreate s\tscan+switch s\taggregates/s\ttruncate+replay s\taggregates/s\t×replay\t")
	for _, r := range rows {
		gen, rep := float64(r.aggregates)/r.generation.Seconds(), float64(r.aggregates)/r.replace.Seconds()
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.0f\t%.1f\t%.0f\t%.2f\t\n", r.name, r.aggregates, r.create.Seconds(), r.generation.Seconds(), gen, r.replace.Seconds(), rep, gen/rep)
	}
	_ = w.Flush()
	fmt.Println()
}
