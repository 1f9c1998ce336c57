package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// A rebuild without downtime (DESIGN.md, "Projectors"):
//
//  1. StartRebuild creates generation g = Last+1 of the view's tables
//     (View.Schema) and marks it building in projection_generations (a
//     lightweight transaction: a second rebuild is refused).
//  2. From then on every member writes each record to g as well as to the
//     active generation, newest first (Handle), once it has re-read the
//     generations (at most GenerationMaxStale later).
//  3. After that delay, the member that started the rebuild (or one that
//     takes it over when its heartbeat stops) scans event_store by token
//     range and brings every aggregate of the view's type in g to its
//     head; each finished range is recorded, so a rebuild cut short
//     resumes where it stopped. The scan is paced (RebuildRate) and
//     pauses while this member's consumer lags (yielder), so that the
//     active generation stays current for readers meanwhile.
//  4. When the scan is done, every aggregate is in g at least where the
//     active generation has it (the scan read event_store after every
//     member wrote g too, and the members write g before the active
//     generation), so a lightweight transaction switches readers and
//     writers to g. The replaced generation is kept current for
//     RebuildGrace (page tokens of it keep working), then dropped.
//
// The scan and a member's consumer may write one aggregate of g at once
// (they share no lock when they run in different processes). g is written
// at timestamps that grow with the aggregate's sequence (writeTimestamp),
// so that whatever the order the writes land in, the newest state wins,
// rows and checkpoint alike. What remains possible is a row under a key
// the winning state left (an order listed under a status it has left in
// orders_by_status) when the two race on one aggregate within
// milliseconds; the auditor removes it (audit.go). The writes after the
// switch carry the clock's time, which must be later than the rebuild's
// start on every member: the members' clocks must agree to within the
// rebuild's duration (at least GenerationMaxStale), as NTP keeps them.

// EventStore is what a projector needs of the event store: an aggregate's
// version and events (to fill gaps and re-drive) and the heads of every
// aggregate, token range by token range (to rebuild). *eventstore.Store
// and its in-memory twin (eventstore/memstore) satisfy it.
type EventStore interface {
	Version(ctx context.Context, id gocql.UUID) (int64, string, error)
	Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error
	HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error
}

// ErrRebuildRunning is a rebuild asked for while one runs.
var ErrRebuildRunning = errors.New("a rebuild is already running")

// ErrNoRebuild is a rebuild cancelled while none runs.
var ErrNoRebuild = errors.New("no rebuild is running")

// WithGenerations makes the projector keep the view's generations in
// store instead of the session's tables (MemoryGenerations in unit tests).
func WithGenerations(store GenerationStore) Option {
	return func(o *projectorOptions) { o.generations = store }
}

// target is one generation of the view a record is written to.
type target[S any] struct {
	gen  int
	view View[S]
	// name is the generation's projection_name in projection_checkpoints.
	name string
	// writeBase is set for a generation being built (writeTimestamp).
	writeBase int64
	// primary marks the active generation: the one whose checkpoints are
	// cached, whose failures dead-letter and park, and that counters and
	// OnApplied follow.
	primary bool
}

// genState is the view's generations as this member last read them.
type genState[S any] struct {
	g       Generations
	readAt  time.Time
	targets []target[S] // newest first
	primary target[S]
}

// writeTimestamp is the write timestamp (µs) of an aggregate's rows and
// checkpoint at sequence seq in a generation being built from base (the
// time the rebuild started): later sequences win whatever the order the
// writes land in, and any write after the switch (at the clock's time)
// wins over all of them.
func writeTimestamp(base, seq int64) int64 { return base + seq }

// viewAt is the view writing generation gen.
func (p *Projector[S]) viewAt(gen int) View[S] {
	if gen == 1 || p.view.At == nil {
		return p.view
	}
	return p.view.At(gen)
}

func (p *Projector[S]) targetOf(g Generations, gen int) target[S] {
	t := target[S]{gen: gen, view: p.viewAt(gen), name: CheckpointName(p.view.Name, gen), primary: gen == g.Active}
	if gen == g.Building {
		t.writeBase = g.WriteBase
	}
	return t
}

// primary is the active generation's target (generation 1 before the
// generations were first read).
func (p *Projector[S]) primary() target[S] {
	if st := p.genState.Load(); st != nil {
		return st.primary
	}
	return target[S]{gen: 1, view: p.view, name: p.view.Name, primary: true}
}

// ActiveGeneration is the generation of the view this member treats as
// active (readers use), as last read.
func (p *Projector[S]) ActiveGeneration() int { return p.primary().gen }

// LiveTable is the active generation's name of the view's table base.
func (p *Projector[S]) LiveTable(base string) string { return TableName(base, p.ActiveGeneration()) }

// setGenerations makes g the generations this member writes by.
func (p *Projector[S]) setGenerations(g Generations) *genState[S] {
	now := time.Now()
	st := &genState[S]{g: g, readAt: now}
	for _, gen := range g.written(now) {
		if gen != 1 && p.view.At == nil {
			continue // a view of one generation (tests)
		}
		t := p.targetOf(g, gen)
		st.targets = append(st.targets, t)
		if t.primary {
			st.primary = t
		}
	}
	if st.primary.view.Write == nil {
		st.primary = p.targetOf(g, g.Active)
	}
	if prev := p.genState.Swap(st); prev != nil && prev.g.Active != g.Active {
		p.logger.Info().Int("from", prev.g.Active).Int("to", g.Active).Msg("active generation switched")
	}
	p.m.generationActive.Set(float64(g.Active))
	p.m.generationBuilding.Set(float64(g.Building))
	return st
}

// generationsNow returns the generations to write a record by: the ones
// read within GenerationRefresh, else read now; when the read fails, the
// last ones while younger than GenerationMaxStale, else an error (the
// record is retried), so that no member writes by generations it has not
// seen for longer than the delay a rebuild waits before its scan.
func (p *Projector[S]) generationsNow(ctx context.Context) (*genState[S], error) {
	if st := p.genState.Load(); st != nil && time.Since(st.readAt) < p.cfg.GenerationRefresh {
		return st, nil
	}
	p.genMu.Lock()
	defer p.genMu.Unlock()
	st := p.genState.Load()
	if st != nil && time.Since(st.readAt) < p.cfg.GenerationRefresh {
		return st, nil
	}
	g, err := p.gens.Load(ctx, p.view.Name)
	if err != nil {
		if st != nil && time.Since(st.readAt) < p.cfg.GenerationMaxStale {
			p.logger.Warn().Err(err).Msg("reading the view's generations; going on with the last read")
			return st, nil
		}
		return nil, err
	}
	return p.setGenerations(g), nil
}

// refreshGenerations re-reads the generations now (at a new claim of
// partitions, so that a member taking over a partition writes by current
// ones).
func (p *Projector[S]) refreshGenerations(ctx context.Context) error {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	g, err := p.gens.Load(ctx, p.view.Name)
	if err != nil {
		return err
	}
	p.setGenerations(g)
	return nil
}

// memberName names this process as a rebuild's owner.
func memberName() string {
	host, _ := os.Hostname()
	return host + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatUint(rand.Uint64()>>40, 36)
}

// rebuildRun is the scan this member runs, for progress and cancellation.
type rebuildRun struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	// retired are the generations this member replaced or cancelled: it
	// drops them when due; the other members only if it has not, later.
	retired    map[int]bool
	aggregates atomic.Int64
	events     atomic.Int64
	rangesDone atomic.Int64
	// yield is the running or last scan's yielder (GET /rebuild).
	yield atomic.Pointer[yielder]
}

// StartRebuild begins a rebuild of the view into a new generation (see
// above) and returns the generations with it building; the rebuild worker
// of this member (RebuildWorker) runs it. ErrRebuildRunning when one runs.
func (p *Projector[S]) StartRebuild(ctx context.Context) (Generations, error) {
	if p.view.At == nil || p.view.Schema == nil {
		return Generations{}, fmt.Errorf("the view %s has no generations (View.At, View.Schema): it cannot be rebuilt beside the live one", p.view.Name)
	}
	cur, err := p.gens.Load(ctx, p.view.Name)
	if err != nil {
		return Generations{}, err
	}
	if cur.Building != 0 {
		return cur, ErrRebuildRunning
	}
	// The tables first: a member that sees the generation building writes
	// it at once.
	if err := p.createTables(ctx, cur.Last+1); err != nil {
		return Generations{}, err
	}
	now := time.Now().UTC()
	var g Generations
	bo := backoff.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}.Start()
	for attempt := 1; ; attempt++ {
		g, err = p.gens.Begin(ctx, p.view.Name, cur, p.member, now.UnixMicro(), p.cfg.RebuildRanges, now)
		if errors.Is(err, ErrGenerationConflict) {
			g, lerr := p.gens.Load(ctx, p.view.Name)
			if lerr == nil && g.Building == cur.Last+1 && g.Owner == p.member {
				break // a timed-out attempt of ours went through
			}
			return g, ErrRebuildRunning
		}
		if err == nil {
			break
		}
		// A lightweight transaction that timed out may or may not have
		// applied: the next attempt tells.
		if attempt == schemaAttempts || ctx.Err() != nil {
			return Generations{}, err
		}
		p.logger.Warn().Err(err).Int("attempt", attempt).Msg("marking the rebuild; trying again")
		if werr := bo.Wait(ctx); werr != nil {
			return Generations{}, err
		}
	}
	if g.Building == 0 { // the timed-out attempt went through: read what it wrote
		if g, err = p.gens.Load(ctx, p.view.Name); err != nil {
			return Generations{}, err
		}
	}
	p.recordRebuild(ctx, `INSERT INTO projection_rebuilds (projection_name, status, started_at, aggregates, events) VALUES (?, 'running', ?, 0, 0)`, p.view.Name, now)
	p.rebuild.aggregates.Store(0)
	p.rebuild.events.Store(0)
	p.rebuild.rangesDone.Store(0)
	p.rebuild.yield.Store(nil)
	p.m.rebuildAggregates.Set(0)
	p.m.rebuildEvents.Set(0)
	p.m.rebuildRangesDone.Set(0)
	p.m.rebuildRangesTotal.Set(float64(g.RangesTotal))
	p.genMu.Lock()
	p.setGenerations(g)
	p.genMu.Unlock()
	p.logger.Info().Int("generation", g.Building).Int("active", g.Active).Msg("rebuild started: writing the new generation beside the active one")
	p.wakeRebuild()
	return g, nil
}

// recordRebuild keeps projection_rebuilds (v0003) up to date for the
// dashboards and tools that read it; a failure is logged.
func (p *Projector[S]) recordRebuild(ctx context.Context, stmt string, args ...any) {
	if p.session == nil {
		return
	}
	if err := p.session.Query(stmt, args...).WithContext(ctx).Exec(); err != nil {
		p.logger.Warn().Err(err).Msg("writing projection_rebuilds")
	}
}

func (p *Projector[S]) createTables(ctx context.Context, gen int) error {
	for _, stmt := range p.view.Schema(gen) {
		if err := p.schemaChange(ctx, stmt); err != nil {
			return fmt.Errorf("creating generation %d of %s: %w", gen, p.view.Name, err)
		}
	}
	return nil
}

// schemaChange runs a schema statement (IF [NOT] EXISTS: safe to send
// again) with a few attempts: a busy cluster may time out on a schema
// change that then completes.
func (p *Projector[S]) schemaChange(ctx context.Context, stmt string) error {
	bo := backoff.Policy{Initial: 500 * time.Millisecond, Max: 5 * time.Second}.Start()
	for attempt := 1; ; attempt++ {
		err := p.gens.Exec(ctx, stmt)
		if err == nil || attempt == schemaAttempts || ctx.Err() != nil {
			return err
		}
		p.logger.Warn().Err(err).Int("attempt", attempt).Str("statement", stmt).Msg("schema change failed; trying again")
		if werr := bo.Wait(ctx); werr != nil {
			return err
		}
	}
}

// schemaAttempts bounds the attempts at one schema change.
const schemaAttempts = 5

// CancelRebuild stops the running rebuild: its generation is dropped (by
// the rebuild worker, once no member writes it any more).
func (p *Projector[S]) CancelRebuild(ctx context.Context) (Generations, error) {
	g, err := p.gens.Load(ctx, p.view.Name)
	if err != nil {
		return Generations{}, err
	}
	if g.Building == 0 {
		return g, ErrNoRebuild
	}
	ok, err := p.gens.Cancel(ctx, p.view.Name, g.Building, time.Now().UTC())
	if err != nil {
		return Generations{}, err
	}
	if !ok {
		return g, ErrNoRebuild
	}
	p.noteRetired(g.Building)
	p.rebuild.mu.Lock()
	if p.rebuild.cancel != nil {
		p.rebuild.cancel()
	}
	p.rebuild.mu.Unlock()
	p.recordRebuild(ctx, `UPDATE projection_rebuilds SET status = 'cancelled', finished_at = ? WHERE projection_name = ?`, time.Now().UTC(), p.view.Name)
	p.logger.Warn().Int("generation", g.Building).Msg("rebuild cancelled; its generation will be dropped")
	_ = p.refreshGenerations(ctx)
	p.wakeRebuild()
	g.Building = 0
	return g, nil
}

// RequestRebuild starts a rebuild (StartRebuild); false when one is
// already running or it could not start (logged).
func (p *Projector[S]) RequestRebuild() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := p.StartRebuild(ctx); err != nil {
		if !errors.Is(err, ErrRebuildRunning) {
			p.logger.Error().Err(err).Msg("starting a rebuild")
		}
		return false
	}
	return true
}

// Rebuild runs a whole rebuild here and now, for tools and tests without
// a rebuild worker: StartRebuild (or the running rebuild, taken over),
// the scan, the switch. It returns once the new generation is active.
func (p *Projector[S]) Rebuild(ctx context.Context) error {
	g, err := p.StartRebuild(ctx)
	if errors.Is(err, ErrRebuildRunning) {
		if g.Owner != p.member {
			ok, terr := p.gens.TakeOver(ctx, p.view.Name, g.Building, g.Owner, g.Heartbeat, p.member, time.Now().UTC())
			if terr != nil || !ok {
				return fmt.Errorf("taking over the running rebuild of %s: %w", p.view.Name, errors.Join(terr, ErrGenerationConflict))
			}
			g, err = p.gens.Load(ctx, p.view.Name)
		} else {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	return p.build(ctx, g)
}

func (p *Projector[S]) wakeRebuild() {
	select {
	case p.rebuildWake <- struct{}{}:
	default:
	}
}

// RebuildWorker is the projector's rebuild worker ("rebuild"): every
// GenerationRefresh it re-reads the view's generations, runs the scan of
// a rebuild this member started (or resumes one whose member went
// silent for RebuildTakeover), and drops the generations due to be.
// While the member is idle (see idleGenerations) it re-reads them only
// every GenerationIdleRefresh, or when woken (a rebuild asked of it).
func (p *Projector[S]) RebuildWorker() supervise.Worker {
	return supervise.Worker{Name: "rebuild", Run: func(ctx context.Context) error {
		t := time.NewTicker(p.cfg.GenerationRefresh)
		defer t.Stop()
		var last time.Time // of the last round
		writes, woken := int64(-1), true
		for {
			if w := p.writes.Load(); woken || w != writes || !p.idleGenerations(time.Since(last)) {
				writes, last = w, time.Now()
				if err := p.rebuildRound(ctx); err != nil {
					return err
				}
			}
			woken = false
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-p.rebuildWake:
				woken = true
			}
		}
	}}
}

// idleGenerations reports whether the rebuild worker may skip a round
// whose last one was since ago, this member having applied no record
// since: the last generations read show none being built or retired, and
// they are younger than GenerationIdleRefresh. Idle, nothing needs them
// every GenerationRefresh: a record applied reads them first when they
// are older (generationsNow), and a rebuild asked of this member wakes
// the worker; the idle pace bounds only how late this member sees a
// rebuild started elsewhere (to take it over should its member go
// silent) and a switch made elsewhere (for its gauges).
func (p *Projector[S]) idleGenerations(since time.Duration) bool {
	st := p.genState.Load()
	return st != nil && st.g.Building == 0 && len(st.g.Retiring) == 0 && since < p.cfg.GenerationIdleRefresh
}

// rebuildRound is one round of the rebuild worker.
func (p *Projector[S]) rebuildRound(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	g, err := p.gens.Load(rctx, p.view.Name)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			p.logger.Warn().Err(err).Msg("reading the view's generations")
		}
		return nil
	}
	p.genMu.Lock()
	p.setGenerations(g)
	p.genMu.Unlock()
	if g.Building != 0 {
		mine := g.Owner == p.member
		if !mine && time.Since(g.Heartbeat) > p.cfg.RebuildTakeover {
			ok, err := p.gens.TakeOver(ctx, p.view.Name, g.Building, g.Owner, g.Heartbeat, p.member, time.Now().UTC())
			if err != nil {
				p.logger.Warn().Err(err).Msg("taking over a silent rebuild")
				return nil
			}
			if mine = ok; ok {
				p.logger.Warn().Str("from", g.Owner).Int("generation", g.Building).Msg("the member running the rebuild went silent; resuming it here")
				g, err = p.gens.Load(ctx, p.view.Name)
				if err != nil {
					return nil
				}
			}
		}
		if mine {
			if err := p.build(ctx, g); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
	now := time.Now()
	for gen, until := range g.Retiring {
		// Members go on writing a generation until they see it due (at
		// most GenerationMaxStale late). The member that retired it drops
		// it; the others only should it not have, RebuildTakeover later.
		due := until.Add(p.cfg.GenerationMaxStale + p.cfg.GenerationRefresh)
		if !p.retiredHere(gen) {
			due = due.Add(p.cfg.RebuildTakeover)
		}
		if now.After(due) {
			if err := p.dropGeneration(ctx, gen); err != nil && ctx.Err() == nil {
				p.logger.Warn().Err(err).Int("generation", gen).Msg("dropping a retired generation; tried again")
			}
		}
	}
	return nil
}

// build runs the scan of generation g.Building (resuming its unfinished
// ranges) and switches to it. It returns nil when the rebuild was
// cancelled or taken over meanwhile.
func (p *Projector[S]) build(ctx context.Context, g Generations) (err error) {
	gen := g.Building
	// A root span: a rebuild replays the events of many commands' traces.
	ctx, span := p.tracer.Start(ctx, "projector rebuild", trace.WithAttributes(attrProjection.String(p.view.Name), attribute.Int("orderstream.generation", gen)))
	defer func() { endSpan(span, err) }()
	p.rebuilding.Store(true)
	p.m.rebuilding.Set(1)
	defer func() {
		p.rebuilding.Store(false)
		p.m.rebuilding.Set(0)
	}()
	if err := p.createTables(ctx, gen); err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.rebuild.mu.Lock()
	p.rebuild.cancel = cancel
	p.rebuild.mu.Unlock()
	defer func() {
		p.rebuild.mu.Lock()
		p.rebuild.cancel = nil
		p.rebuild.mu.Unlock()
	}()
	var lost atomic.Bool // cancelled or taken over
	beat := func() {
		hctx, hcancel := context.WithTimeout(bctx, 10*time.Second)
		defer hcancel()
		ok, err := p.gens.Heartbeat(hctx, p.view.Name, gen, p.member, time.Now().UTC())
		if err != nil {
			p.logger.Warn().Err(err).Msg("rebuild heartbeat")
			return
		}
		if !ok {
			lost.Store(true)
			cancel()
		}
	}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(max(p.cfg.RebuildTakeover/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	defer func() { cancel(); <-hbDone }()

	// Every member writes the new generation once it has re-read the
	// generations; wait until they all have before reading event_store.
	if wait := time.Until(g.StartedAt.Add(p.cfg.GenerationMaxStale + p.cfg.GenerationRefresh)); wait > 0 {
		p.logger.Info().Dur("wait", wait).Int("generation", gen).Msg("waiting for every member to write the new generation before the scan")
		select {
		case <-bctx.Done():
		case <-time.After(wait):
		}
	}
	// stopped reports whether the rebuild stopped because it was
	// cancelled or taken over (here or elsewhere) rather than failed.
	stopped := func(err error) bool {
		if !lost.Load() && err != nil && ctx.Err() == nil {
			lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
			now, lerr := p.gens.Load(lctx, p.view.Name)
			lcancel()
			lost.Store(lerr == nil && (now.Building != gen || now.Owner != p.member))
		}
		if lost.Load() {
			p.logger.Warn().Int("generation", gen).Msg("rebuild stopped: cancelled, or taken over by another member")
		}
		return lost.Load()
	}
	done, err := p.gens.RangesDone(bctx, p.view.Name, gen)
	if err != nil {
		if stopped(err) {
			return nil
		}
		return err
	}
	ranges := eventstore.SplitTokens(max(g.RangesTotal, 1))
	p.rebuild.aggregates.Store(0)
	p.rebuild.events.Store(0)
	for _, rp := range done {
		p.rebuild.aggregates.Add(rp.Aggregates)
		p.rebuild.events.Add(rp.Events)
	}
	p.rebuild.rangesDone.Store(int64(len(done)))
	p.m.rebuildRangesTotal.Set(float64(len(ranges)))
	p.m.rebuildRangesDone.Set(float64(len(done)))
	start := time.Now()
	p.logger.Info().Int("generation", gen).Int("ranges", len(ranges)).Int("ranges_done", len(done)).Msg("rebuild scan started")

	t := p.targetOf(g, gen)
	pace := newSpacing(p.cfg.RebuildRate)
	yield := p.newYielder(gen)
	p.rebuild.yield.Store(yield)
	defer yield.stop()
	grp, gctx := errgroup.WithContext(bctx)
	grp.SetLimit(p.cfg.RebuildParallelism)
	for i, rg := range ranges {
		if _, ok := done[i]; ok {
			continue
		}
		grp.Go(func() error {
			var rp RangeProgress
			err := p.store.HeadsInRange(gctx, rg, func(h eventstore.Head) error {
				if h.AggregateType != p.view.AggregateType {
					return nil
				}
				if err := yield.wait(gctx); err != nil {
					return err
				}
				if err := pace.wait(gctx); err != nil {
					return err
				}
				n, err := p.rebuildAggregate(gctx, t, h.AggregateID)
				if err != nil {
					return err
				}
				rp.Aggregates++
				rp.Events += n
				p.m.rebuildAggregates.Set(float64(p.rebuild.aggregates.Add(1)))
				p.m.rebuildEvents.Set(float64(p.rebuild.events.Add(n)))
				return nil
			})
			if err != nil {
				return fmt.Errorf("scanning token range %d of event_store: %w", i, err)
			}
			if err := p.gens.RangeDone(gctx, p.view.Name, gen, i, rp); err != nil {
				return err
			}
			p.m.rebuildRangesDone.Set(float64(p.rebuild.rangesDone.Add(1)))
			return nil
		})
	}
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	wait := make(chan error, 1)
	go func() { wait <- grp.Wait() }()
scan:
	for {
		select {
		case <-progress.C:
			yielding, yielded := yield.state()
			p.logger.Info().Int("generation", gen).Int64("ranges_done", p.rebuild.rangesDone.Load()).Int("ranges", len(ranges)).
				Int64("aggregates", p.rebuild.aggregates.Load()).Dur("elapsed", time.Since(start)).
				Bool("yielding", yielding).Dur("yielded", yielded).Msg("rebuilding")
		case err = <-wait:
			break scan
		}
	}
	if stopped(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rebuilding %s: %w", p.view.Name, err)
	}
	cancel()
	<-hbDone

	// Every aggregate is in the new generation at least where the active
	// one has it: switch.
	p.switching.Store(true)
	defer p.switching.Store(false)
	ok, err := p.gens.Switch(ctx, p.view.Name, g.Active, gen, time.Now().UTC().Add(p.cfg.RebuildGrace))
	if err != nil {
		return err
	}
	if !ok {
		p.logger.Warn().Int("generation", gen).Msg("rebuild not switched to: cancelled or changed meanwhile")
		return nil
	}
	p.noteRetired(g.Active)
	p.recordRebuild(ctx, `UPDATE projection_rebuilds SET status = 'done', finished_at = ?, aggregates = ?, events = ? WHERE projection_name = ?`,
		time.Now().UTC(), p.rebuild.aggregates.Load(), p.rebuild.events.Load(), p.view.Name)
	if err := p.refreshGenerations(ctx); err != nil {
		p.logger.Warn().Err(err).Msg("re-reading the generations after the switch")
	}
	span.SetAttributes(attribute.Int64("orderstream.rebuild.aggregates", p.rebuild.aggregates.Load()), attribute.Int64("orderstream.rebuild.events", p.rebuild.events.Load()))
	p.logger.Info().Int("from", g.Active).Int("to", gen).Int64("aggregates", p.rebuild.aggregates.Load()).Int64("events", p.rebuild.events.Load()).
		Dur("scan", time.Since(start)).Dur("grace", p.cfg.RebuildGrace).Msg("rebuild done: switched to the new generation; the old one is dropped after the grace period")
	return nil
}

// rebuildAggregate brings the aggregate in generation t through its head
// in event_store, under the aggregate's lock (the consumer of this member
// waits). A poison event stops it there without a dead letter: the
// active generation parks the aggregate when its consumer meets it.
func (p *Projector[S]) rebuildAggregate(ctx context.Context, t target[S], id gocql.UUID) (int64, error) {
	defer p.lockAggregate(id)()
	cp, err := p.loadCheckpointOn(ctx, t, id)
	if errors.Is(err, errPermanent) {
		cp = checkpoint[S]{} // written by an incompatible version: start over
	} else if err != nil {
		return 0, err
	}
	var events []eventstore.Event
	if cp.seq == 0 {
		// Most aggregates: not in the new generation yet; every event,
		// without asking for the head first.
		err = p.store.Events(ctx, id, 0, 0, func(e eventstore.Event) error {
			events = append(events, e)
			return nil
		})
	} else {
		_, events, err = p.eventsAfter(ctx, id, cp.seq)
	}
	if err != nil || len(events) == 0 {
		return 0, err
	}
	if err := p.applyOn(ctx, t, id, cp, events, true); err != nil {
		return 0, err
	}
	return int64(len(events)), nil
}

// dropGeneration drops a retired generation's tables, deletes its
// checkpoints, and forgets it.
func (p *Projector[S]) dropGeneration(ctx context.Context, gen int) error {
	if st := p.genState.Load(); st != nil && (gen == st.g.Active || gen == st.g.Building) {
		return fmt.Errorf("generation %d is in use", gen)
	}
	for _, table := range p.viewAt(gen).Tables {
		if err := p.schemaChange(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
			return fmt.Errorf("dropping %s: %w", table, err)
		}
	}
	name := CheckpointName(p.view.Name, gen)
	grp, gctx := errgroup.WithContext(ctx)
	grp.SetLimit(p.cfg.RebuildParallelism)
	var deleted atomic.Int64
	for _, rg := range eventstore.SplitTokens(p.cfg.RebuildRanges) {
		grp.Go(func() error {
			return p.store.HeadsInRange(gctx, rg, func(h eventstore.Head) error {
				if h.AggregateType != p.view.AggregateType {
					return nil
				}
				deleted.Add(1)
				return p.gens.DeleteCheckpoint(gctx, name, h.AggregateID)
			})
		})
	}
	if err := grp.Wait(); err != nil {
		return fmt.Errorf("deleting the checkpoints of generation %d: %w", gen, err)
	}
	if err := p.gens.Dropped(ctx, p.view.Name, gen); err != nil {
		return err
	}
	p.logger.Info().Int("generation", gen).Strs("tables", p.viewAt(gen).Tables).Int64("checkpoints", deleted.Load()).Msg("retired generation dropped")
	return nil
}

// RebuildStatus is what GET /rebuild answers.
type RebuildStatus struct {
	View string `json:"view"`
	// State is "idle" or "building".
	State       string `json:"state"`
	Active      int    `json:"active_generation"`
	Building    int    `json:"building_generation,omitempty"`
	Owner       string `json:"owner,omitempty"`
	StartedAt   string `json:"started_at,omitempty"`
	RangesDone  int    `json:"ranges_done"`
	RangesTotal int    `json:"ranges_total"`
	Aggregates  int64  `json:"aggregates"`
	Events      int64  `json:"events"`
	// Rate is the aggregates rebuilt per second since the start.
	Rate float64 `json:"aggregates_per_second"`
	// Yielding and YieldSeconds are the scan's pauses for its member's
	// lagging consumer (rebuild_max_lag), as the member running it answers.
	Yielding     bool              `json:"yielding,omitempty"`
	YieldSeconds float64           `json:"yield_seconds,omitempty"`
	Retiring     map[string]string `json:"retiring,omitempty"`
}

// Status reads the state of the view's generations and of a running
// rebuild (from the database: any member answers alike).
func (p *Projector[S]) Status(ctx context.Context) (RebuildStatus, error) {
	g, err := p.gens.Load(ctx, p.view.Name)
	if err != nil {
		return RebuildStatus{}, err
	}
	s := RebuildStatus{View: p.view.Name, State: "idle", Active: g.Active}
	for gen, until := range g.Retiring {
		if s.Retiring == nil {
			s.Retiring = map[string]string{}
		}
		s.Retiring[strconv.Itoa(gen)] = until.UTC().Format(time.RFC3339)
	}
	if g.Building == 0 {
		return s, nil
	}
	s.State, s.Building, s.Owner, s.RangesTotal = "building", g.Building, g.Owner, g.RangesTotal
	s.StartedAt = g.StartedAt.UTC().Format(time.RFC3339Nano)
	done, err := p.gens.RangesDone(ctx, p.view.Name, g.Building)
	if err != nil {
		return RebuildStatus{}, err
	}
	s.RangesDone = len(done)
	for _, rp := range done {
		s.Aggregates += rp.Aggregates
		s.Events += rp.Events
	}
	if g.Owner == p.member { // finer than the finished ranges
		s.Aggregates = max(s.Aggregates, p.rebuild.aggregates.Load())
		s.Events = max(s.Events, p.rebuild.events.Load())
		if y := p.rebuild.yield.Load(); y != nil {
			yielding, yielded := y.state()
			s.Yielding, s.YieldSeconds = yielding, yielded.Seconds()
		}
	}
	if el := time.Since(g.StartedAt).Seconds(); el > 0 {
		s.Rate = float64(s.Aggregates) / el
	}
	return s, nil
}

// StatusHandler serves GET /rebuild.
func (p *Projector[S]) StatusHandler(w http.ResponseWriter, r *http.Request) {
	s, err := p.Status(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "cannot read the generations: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// RebuildHandler serves POST /rebuild on the admin server: 202 when the
// rebuild started (a new generation is being built), 409 when one is
// already running.
func (p *Projector[S]) RebuildHandler(w http.ResponseWriter, r *http.Request) {
	g, err := p.StartRebuild(r.Context())
	switch {
	case errors.Is(err, ErrRebuildRunning):
		writeJSON(w, http.StatusConflict, map[string]any{"status": fmt.Sprintf("a rebuild of %s is already running", p.view.Name), "building_generation": g.Building})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "cannot start the rebuild: " + err.Error()})
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{
			"status":              fmt.Sprintf("rebuild of %s started; GET /rebuild shows its progress", p.view.Name),
			"active_generation":   g.Active,
			"building_generation": g.Building,
		})
	}
}

// CancelHandler serves DELETE /rebuild and POST /rebuild/cancel: 202 when
// the running rebuild was cancelled (its generation is dropped), 409 when
// none runs.
func (p *Projector[S]) CancelHandler(w http.ResponseWriter, r *http.Request) {
	g, err := p.CancelRebuild(r.Context())
	switch {
	case errors.Is(err, ErrNoRebuild):
		writeJSON(w, http.StatusConflict, map[string]any{"status": fmt.Sprintf("no rebuild of %s is running", p.view.Name), "active_generation": g.Active})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "cannot cancel the rebuild: " + err.Error()})
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"status": fmt.Sprintf("rebuild of %s cancelled; its generation is dropped", p.view.Name), "active_generation": g.Active})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// spacing spaces calls at most rate per second apart, across goroutines
// (no burst); rate 0 does not wait.
type spacing struct {
	mu    sync.Mutex
	every time.Duration
	next  time.Time
}

func newSpacing(rate float64) *spacing {
	if rate <= 0 {
		return &spacing{}
	}
	return &spacing{every: time.Duration(float64(time.Second) / rate)}
}

func (s *spacing) wait(ctx context.Context) error {
	if s.every == 0 {
		return nil
	}
	s.mu.Lock()
	now := time.Now()
	if s.next.Before(now) {
		s.next = now
	}
	at := s.next
	s.next = s.next.Add(s.every)
	s.mu.Unlock()
	if d := time.Until(at); d > 0 && !backoff.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

func (p *Projector[S]) noteRetired(gen int) {
	p.rebuild.mu.Lock()
	defer p.rebuild.mu.Unlock()
	if p.rebuild.retired == nil {
		p.rebuild.retired = map[int]bool{}
	}
	p.rebuild.retired[gen] = true
}

func (p *Projector[S]) retiredHere(gen int) bool {
	p.rebuild.mu.Lock()
	defer p.rebuild.mu.Unlock()
	return p.rebuild.retired[gen]
}

// yielder makes a rebuild's scan yield to this member's live consumption:
// the scan and the consumer share the CPU and the database, and a reader
// waiting for min_version waits on the consumer. Before each aggregate the
// scan asks wait: while the consumer is behind, more than maxLag records
// or for longer than maxDelay (the longest a claimed partition has not
// been caught up with its end, as sampled: an upper bound of the age of
// its oldest unapplied record, which a min_version reader waits for), the
// scan pauses, in steps of poll, until the consumer is back within half
// of both (the half keeps it from pausing and resuming on every record).
// A consumer within the bounds never pauses it. So that the scan
// progresses even when the consumer never catches up, one pause lasts at
// most maxPause; the scan then runs for minRun (maxPause/4) before it may
// pause again: it yields at most 80% of the time. The time paused is
// counted once (not per scanning goroutine) in
// rebuild_yield_seconds_total, and rebuild_yielding is 1 meanwhile.
type yielder struct {
	// behind is how far the consumer is behind, now: records (negative
	// when not known yet: not behind) and for how long.
	behind   func(now time.Time) (int64, time.Duration)
	maxLag   int64         // 0: records never pause the scan
	maxDelay time.Duration // 0: time never pauses the scan
	maxPause time.Duration
	minRun   time.Duration
	poll     time.Duration
	now      func() time.Time
	sleep    func(context.Context, time.Duration) bool
	// paused reports a pause's start (true) and end (false, with how long
	// it lasted and whether it was cut short at maxPause), under mu.
	paused func(start bool, lag int64, delay, lasted time.Duration, cut bool)
	// spent adds time paused, under mu.
	spent func(time.Duration)

	mu       sync.Mutex
	yielding bool
	since    time.Time // the pause's start
	counted  time.Time // the pause is counted in spent up to here
	runUntil time.Time // after a pause cut short, no pause before this
	total    time.Duration
}

// newYielder is the yielder of a scan of p's generation gen.
func (p *Projector[S]) newYielder(gen int) *yielder {
	// Pauses may come and go many times a second: a pause is logged (its
	// start and its end) when none was for 10 s, with the pauses held back
	// since; one cut short at rebuild_max_pause always is.
	var (
		lastLogged time.Time
		logged     bool
		held       int
		heldFor    time.Duration
	)
	clock := &lagClock{}
	return &yielder{
		behind: func(now time.Time) (int64, time.Duration) {
			claims, complete := p.claimed()
			return clock.behind(claims, complete, now)
		},
		maxLag: p.cfg.RebuildMaxLag, maxDelay: p.cfg.RebuildMaxDelay, maxPause: p.cfg.RebuildMaxPause, minRun: p.cfg.RebuildMaxPause / 4,
		poll: min(max(p.cfg.RebuildMaxPause/20, time.Millisecond), 50*time.Millisecond),
		now:  time.Now, sleep: backoff.Sleep,
		paused: func(start bool, lag int64, delay, lasted time.Duration, cut bool) {
			if start {
				p.m.rebuildYielding.Set(1)
				if logged = time.Since(lastLogged) >= 10*time.Second; logged {
					lastLogged = time.Now()
					p.logger.Info().Int("generation", gen).Int64("lag", lag).Dur("behind_for", delay).
						Int64("max_lag", p.cfg.RebuildMaxLag).Dur("max_delay", p.cfg.RebuildMaxDelay).
						Int("pauses_not_logged", held).Dur("paused_not_logged", heldFor).
						Msg("rebuild scan yielding: this member's consumer is behind; the scan pauses until it catches up")
					held, heldFor = 0, 0
				}
				return
			}
			p.m.rebuildYielding.Set(0)
			switch {
			case cut:
				p.logger.Warn().Int("generation", gen).Int64("lag", lag).Dur("behind_for", delay).Dur("paused", lasted).Dur("scan_for", p.cfg.RebuildMaxPause/4).
					Msg("rebuild scan resumed although the consumer is still behind (rebuild_max_pause), so that the rebuild progresses")
			case logged:
				p.logger.Info().Int("generation", gen).Int64("lag", lag).Dur("paused", lasted).Msg("rebuild scan resumed: the consumer caught up")
			default:
				held++
				heldFor += lasted
			}
		},
		spent: func(d time.Duration) { p.m.rebuildYielded.Add(d.Seconds()) },
	}
}

// wait returns at once unless the scan must yield; then it returns once
// the pause is over, or with ctx's error when ctx ends first.
func (y *yielder) wait(ctx context.Context) error {
	for {
		d := y.check()
		if d == 0 {
			return nil
		}
		if !y.sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// check decides, now, whether the scan runs (0) or pauses for how long
// before it asks again.
func (y *yielder) check() time.Duration {
	if y.maxLag <= 0 && y.maxDelay <= 0 {
		return 0
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	now := y.now()
	lag, delay := y.behind(now)
	if !y.yielding {
		if !y.over(lag, delay, 1) || now.Before(y.runUntil) {
			return 0
		}
		y.yielding, y.since, y.counted = true, now, now
		y.paused(true, lag, delay, 0, false)
		return y.poll
	}
	y.count(now)
	switch {
	case !y.over(lag, delay, 2):
		y.resume(now, lag, delay, false)
		return 0
	case now.Sub(y.since) >= y.maxPause:
		y.runUntil = now.Add(y.minRun)
		y.resume(now, lag, delay, true)
		return 0
	}
	return y.poll
}

// over reports whether the consumer is behind by more than the bounds
// divided by div.
func (y *yielder) over(lag int64, delay time.Duration, div int64) bool {
	return (y.maxLag > 0 && lag > y.maxLag/div) || (y.maxDelay > 0 && delay > y.maxDelay/time.Duration(div))
}

// count adds the time paused up to now (under mu).
func (y *yielder) count(now time.Time) {
	if d := now.Sub(y.counted); d > 0 {
		y.total += d
		y.spent(d)
		y.counted = now
	}
}

func (y *yielder) resume(now time.Time, lag int64, delay time.Duration, cut bool) {
	y.yielding = false
	y.paused(false, lag, delay, now.Sub(y.since), cut)
}

// stop ends a pause the scan left (it ended or failed meanwhile).
func (y *yielder) stop() {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.yielding {
		now := y.now()
		y.count(now)
		lag, delay := y.behind(now)
		y.resume(now, lag, delay, false)
	}
}

// state is whether the scan is paused now and the time paused so far.
func (y *yielder) state() (bool, time.Duration) {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.yielding, y.total
}

// lagClock remembers when each claimed partition was last seen caught up
// with its end (as its lag is sampled, at every check of the scan), so
// that how long the consumer has been behind is known without a
// timestamp from the consumer.
type lagClock struct {
	mu       sync.Mutex
	caughtUp map[*claimState]time.Time
}

// behind is the lag of the claimed partitions (as Lag: -1 when some has
// not started, complete false) and the longest one that is behind now has
// been so (since it was last seen caught up, or first seen).
func (l *lagClock) behind(claims map[int32]*claimState, complete bool, now time.Time) (int64, time.Duration) {
	if !complete {
		return -1, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make(map[*claimState]time.Time, len(claims))
	var total int64
	var longest time.Duration
	for _, c := range claims {
		lag := c.lag()
		total += lag
		since, ok := l.caughtUp[c]
		if lag == 0 || !ok {
			since = now
		}
		seen[c] = since
		longest = max(longest, now.Sub(since))
	}
	l.caughtUp = seen // partitions no longer claimed are forgotten
	return total, longest
}

// claimed is the partitions this member consumes now, and whether every
// one it was given has started (Lag is -1 until then).
func (p *Projector[S]) claimed() (map[int32]*claimState, bool) {
	p.claimsMu.Lock()
	defer p.claimsMu.Unlock()
	if len(p.claims) < p.expectedClaims {
		return nil, false
	}
	return maps.Clone(p.claims), true
}
