package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/lease"
	"github.com/orderstream/orderstream/pkg/logging"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// The self-healing auditor (DESIGN.md, "Projectors"): a worker of each
// projector service that walks event_store by token range, at a bounded
// rate and within a CPU budget, compares every aggregate of the view's type
// with what the view holds (the checkpoint's sequence against the
// aggregate's current_sequence, the checkpointed state against the fold of
// the events, each row against the row that state calls for), walks the
// view's tables as well for rows that should not exist, and repairs what
// differs by re-applying the aggregate from event_store under the lock the
// live consumer takes (lockAggregate).
//
// Passes are AuditConfig.Pause apart while the view consumes records; after
// a pass during which the projector applied none, the auditor rests (rest)
// for AuditConfig.IdlePause, or until the projector applies a record: the
// read model drifts through writes (lost, or a crash between a write and
// its offset), bar hand edits, which the idle pass still finds. The signal
// is this member's count of writes (Projector.writes), read from memory.
// With several replicas, the one holding the audit lease sees only the
// records of the partitions it consumes: records that only others apply
// do not wake it, and the next pass then comes after IdlePause.
//
// An aggregate whose checkpoint is behind event_store may simply have
// records in flight: it is re-checked after AuditConfig.Grace, and is drift
// only if the projector has not reached, by then, the version first seen.
// What looks like drift is confirmed under the aggregate's lock before it
// is counted and repaired, so that a write of the live consumer landing
// between two reads is not taken for drift.
//
// Racing with live consumption: the repair holds the aggregate's lock, so
// this process's consumer waits; it folds every event through the head it
// reads under the lock and writes the rows, then the checkpoint, at that
// head, as the consumer does (Checkpoints.Commit), and updates the consumer's
// cache; a record at or below the head arriving afterwards is skipped as
// applied, the next one applied after it. Another member consuming the
// aggregate's partition does not take this process's lock: should its
// write of a newer event land before the repair's, the repair would put
// the aggregate back at the older head, so after writing, the repair reads
// the head again and repeats while it moved (at most auditRepairRounds
// times; the next pass catches the rest). What it cannot prevent: a member
// that lags on the aggregate's partition keeps its cached, older
// checkpoint, and its next write puts the rows back below the repaired
// version until it has applied its backlog (which it then does, through
// the repaired head). An aggregate is only repaired after the grace period
// and while this member is not lagging, so this takes a member stuck
// longer than the grace on one partition while another audits; with one
// replica per projector (the default) it cannot happen.

// AuditConfig tunes the auditor (keys projector.audit.*).
type AuditConfig struct {
	Enabled bool `mapstructure:"enabled" help:"run the auditor, which compares the read model with event_store continuously and repairs drift"`
	// Rate bounds what a pass reads: each aggregate of event_store and
	// each row of the view's tables is one check.
	Rate float64 `mapstructure:"rate" help:"checks per second at most (an aggregate of event_store, or a row of the view's tables)"`
	// CPUBudget is measured as the process's CPU time (getrusage) spent
	// while the auditor checks: time spent by other workers meanwhile is
	// counted too, so the auditor slows down when the projector is busy.
	CPUBudget float64       `mapstructure:"cpu_budget" help:"fraction of one core the process may spend while the auditor works (process CPU time during its checks); it sleeps to stay under"`
	Ranges    int           `mapstructure:"ranges" help:"token ranges a pass walks event_store and the view's tables in"`
	Grace     time.Duration `mapstructure:"grace" help:"how long an aggregate may stay behind event_store (records in flight) before it counts as drift"`
	Pause     time.Duration `mapstructure:"pause" help:"pause between two passes while the projector applies records"`
	// IdlePause spaces passes while the view consumes nothing: drift
	// needs writes (a lost one, a crash between a write and its offset),
	// bar hand edits, which the slow idle pass still finds.
	IdlePause time.Duration `mapstructure:"idle_pause" help:"pause between two passes while the projector applies nothing (no write since the last pass began); a record applied ends it, though not before pause"`
	Fold      bool          `mapstructure:"fold" help:"also fold each aggregate's events and compare the state with the checkpointed one (reads every event once a pass)"`
	// MaxPending bounds the aggregates waiting out their grace period.
	MaxPending int `mapstructure:"max_pending" help:"aggregates behind event_store re-checked after the grace period at once; more wait for the next pass"`
	// Lease elects the one replica that audits.
	Lease lease.Config `mapstructure:"lease"`
}

// DefaultAuditConfig is on, at a modest rate: 50 checks/s, a tenth of a
// core, passes 10 minutes apart while the view consumes records, an hour
// apart while it consumes none. Each check costs the database a few
// reads: measured with `make bench-e2e`, four auditors at 200 checks/s
// kept an idle Cassandra at a quarter to half of a core, and at 50
// checks/s, passes 10 minutes apart, still half a core (issue 18 wants
// 0.03 of a core idle). The idle pause stays well below the 6 hours of
// the OrderstreamReadModelAuditOverdue alert.
func DefaultAuditConfig() AuditConfig {
	return AuditConfig{Enabled: true, Rate: 50, CPUBudget: 0.1, Ranges: 256, Grace: 30 * time.Second, Pause: 10 * time.Minute, IdlePause: time.Hour,
		Fold: true, MaxPending: 10_000, Lease: lease.DefaultConfig()}
}

// Validate checks every key.
func (c AuditConfig) Validate() error {
	var errs []error
	check := func(ok bool, key, format string, args ...any) {
		if !ok {
			errs = append(errs, config.Errorf(key, format, args...))
		}
	}
	check(c.Rate > 0 && c.Rate <= 1e6, "rate", "must be in (0, 1e6], got %g", c.Rate)
	check(c.CPUBudget > 0 && c.CPUBudget <= 64, "cpu_budget", "must be in (0, 64] (cores), got %g", c.CPUBudget)
	check(c.Ranges >= 1 && c.Ranges <= 65536, "ranges", "must be 1..65536, got %d", c.Ranges)
	check(c.Grace >= 0, "grace", "must not be negative, got %s", c.Grace)
	check(c.Pause >= 0, "pause", "must not be negative, got %s", c.Pause)
	check(c.IdlePause > 0 && c.IdlePause >= c.Pause, "idle_pause", "must be positive and at least pause (%s), got %s", c.Pause, c.IdlePause)
	check(c.MaxPending >= 1, "max_pending", "must be at least 1, got %d", c.MaxPending)
	return errors.Join(append(errs, config.Nest("lease", c.Lease.Validate()))...)
}

// AuditRow is a row of a view's table as the auditor sees it.
type AuditRow struct {
	Table       string
	Key         string // the primary key, printed: equal keys print equal
	AggregateID gocql.UUID
	Version     int64
	Digest      string // the row's content, canonical: equal rows have equal digests
	Value       any    // the row as the view types it, for ViewRows
}

// ViewAudit is how the auditor compares a view's rows with the events
// (View.Audit).
type ViewAudit[S any] struct {
	// Want returns the rows state s of aggregate id at seq calls for:
	// those Write writes for it.
	Want func(id gocql.UUID, s S, seq int64) ([]AuditRow, error)
	// Rows reads the view's tables in session; table maps the name of one
	// of View.Tables to the table that holds it now.
	Rows func(session *gocql.Session, table func(string) string) ViewRows
}

// ViewRows reads and deletes rows of a view's tables.
type ViewRows interface {
	// Read returns the row at want's key, false when there is none.
	Read(ctx context.Context, want AuditRow) (AuditRow, bool, error)
	// Scan calls fn with every row of the view's tables whose partition
	// key's token is in rg. An error of fn stops it and is returned.
	Scan(ctx context.Context, rg eventstore.TokenRange, fn func(AuditRow) error) error
	// Delete adds the deletion of r to b.
	Delete(b *gocql.Batch, r AuditRow)
	// Remove deletes rows at once (rows of an aggregate event_store does
	// not have, which no checkpoint goes with).
	Remove(ctx context.Context, rows []AuditRow) error
}

// The kinds of drift (the label kind of audit_drift_total).
const (
	DriftMissingRow   = "missing_row"   // a row (or the whole aggregate) the events call for is absent
	DriftStaleVersion = "stale_version" // the checkpoint or a row is behind event_store past the grace period
	DriftWrongContent = "wrong_content" // a row, or the checkpointed state, differs from the fold of the events
	DriftStrayRow     = "stray_row"     // a row no event calls for (an aggregate without events, a status or customer left)
)

// DriftKinds lists the kinds of drift.
func DriftKinds() []string {
	return []string{DriftMissingRow, DriftStaleVersion, DriftWrongContent, DriftStrayRow}
}

// auditRepairRounds bounds the repairs of one aggregate in one check
// (another member's newer write may land under a repair).
const auditRepairRounds = 3

// auditMaxRedefer bounds how often an aggregate that keeps moving is
// re-checked within a pass; it is checked again the next pass.
const auditMaxRedefer = 3

// Auditor is a projector's self-healing auditor. Build it with NewAuditor
// and run its Worker.
type Auditor[S any] struct {
	p      *Projector[S]
	cfg    AuditConfig
	rows   ViewRows // nil: the view's rows are not compared (checkpoints only)
	logger zerolog.Logger
	m      *auditMetrics
	pace   pacer
	cpu    cpuBudget

	pending map[gocql.UUID]pendingCheck
	started bool
}

// pendingCheck is an aggregate behind event_store, waiting out the grace
// period.
type pendingCheck struct {
	head    int64      // the head first seen behind
	due     time.Time  // when to look again
	strays  []AuditRow // rows of it found stray meanwhile
	redefer int
}

// NewAuditor builds the auditor of p's view. rows reads the view's tables
// (nil: compare checkpoints only); the service passes the view's own
// (View.Audit.Rows), tests an in-memory one.
func NewAuditor[S any](p *Projector[S], cfg AuditConfig, rows ViewRows, reg prometheus.Registerer) (*Auditor[S], error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auditor: %w", config.Nest("projector.audit", err))
	}
	m, err := newAuditMetrics(p.view.Name, reg)
	if err != nil {
		return nil, err
	}
	return &Auditor[S]{
		p: p, cfg: cfg, rows: rows, m: m,
		logger:  p.logger.With().Str("worker", "audit").Logger(),
		pace:    pacer{every: time.Duration(float64(time.Second) / cfg.Rate)},
		cpu:     cpuBudget{budget: cfg.CPUBudget, now: processCPU},
		pending: map[gocql.UUID]pendingCheck{},
	}, nil
}

// auditWorkers are the workers Wire adds for the auditor: none when it is
// off.
func (p *Projector[S]) auditWorkers(session *gocql.Session, reg prometheus.Registerer) ([]supervise.Worker, error) {
	cfg := p.cfg.Audit
	if !cfg.Enabled {
		return nil, nil
	}
	var rows ViewRows
	if p.view.Audit != nil && p.view.Audit.Rows != nil {
		rows = p.view.Audit.Rows(session, p.auditTable)
	}
	a, err := NewAuditor(p, cfg, rows, reg)
	if err != nil {
		return nil, err
	}
	// One auditor per projector, whatever its replicas: the one holding
	// the lease audits, the others stand by.
	host, _ := os.Hostname()
	l, err := lease.New(session, AuditLeaseName(p.view.Name), host, cfg.Lease, p.logger, reg)
	if err != nil {
		return nil, fmt.Errorf("auditor: %w", err)
	}
	return []supervise.Worker{{Name: "audit", Run: func(ctx context.Context) error { return l.Run(ctx, a.run) }}}, nil
}

// AuditLeaseName names the lease the auditors of a view's replicas contend
// for (in relay_leases, pkg/lease).
func AuditLeaseName(view string) string { return "projector-audit/" + view }

// auditCheckpointName is the projection_name of the live generation's
// checkpoints, and auditTable the live name of one of View.Tables: what the
// auditor compares with event_store.
func (p *Projector[S]) auditCheckpointName() string {
	return CheckpointName(p.view.Name, p.ActiveGeneration())
}

func (p *Projector[S]) auditTable(base string) string { return p.LiveTable(base) }

// lagging reports whether this member's consumer is more than
// ReadyMaxLag records behind its partitions (not ready): aggregates behind
// event_store are then not taken for drift.
func (p *Projector[S]) lagging() bool {
	return p.joined.Load() && p.Lag() > p.cfg.ReadyMaxLag
}

// Worker runs passes until ctx ends, without a lease (for tools and
// tests; a service runs it behind the view's audit lease). After a
// complete pass, the next starts Pause after it ended if the projector
// applied a record since it began; else the auditor rests (see rest). A
// pass cut short by an error of event_store or of the view's table is not
// complete; the worker logs it and starts the next one after Pause.
func (a *Auditor[S]) Worker() supervise.Worker {
	return supervise.Worker{Name: "audit", Run: a.run}
}

func (a *Auditor[S]) run(ctx context.Context) error {
	// Until a first pass completes, time since the last complete one counts
	// from the start, so that the overdue alert does not fire at a start.
	if !a.started {
		a.started = true
		a.m.lastComplete.SetToCurrentTime()
	}
	for {
		writes := a.p.writes.Load()
		res, err := a.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			a.logger.Warn().Err(err).Msg("audit pass cut short; the next one starts after the pause")
			if err := sleep(ctx, a.cfg.Pause); err != nil {
				return nil
			}
			continue
		}
		a.logger.Info().Int64("aggregates", res.Aggregates).Int64("rows", res.Rows).Int64("drift", res.Drift).Int64("repaired", res.Repaired).
			Int64("failed", res.Failed).Int64("parked", res.Parked).Dur("took", res.Took).Msg("audit pass complete")
		if err := a.rest(ctx, writes, time.Now()); err != nil {
			return nil
		}
	}
}

// The reasons a resting auditor wakes (the label reason of
// audit_wakes_total).
const (
	WakeApplied   = "applied"    // the projector applied a record
	WakeIdlePause = "idle_pause" // IdlePause went by without one
)

// restPollMax bounds how long a resting auditor takes to see that the
// projector applied a record (it reads an atomic counter: nothing to the
// database).
const restPollMax = time.Second

// rest waits after a complete pass that ended at end, for which the
// projector's write count was writes as it began. If the projector wrote
// since, the next pass is due Pause after end. If not, the view consumed
// nothing for a whole pass, and an idle view does not drift but by hand
// edits: the auditor rests until IdlePause after end, or until the
// projector applies a record, though not before Pause after end. The
// auditor's own repairs are writes too, so a pass that repaired is
// followed by another after Pause, which finds the view exact.
func (a *Auditor[S]) rest(ctx context.Context, writes int64, end time.Time) error {
	if a.p.writes.Load() != writes {
		return sleep(ctx, time.Until(end.Add(a.cfg.Pause)))
	}
	a.m.resting.Set(1)
	defer a.m.resting.Set(0)
	a.logger.Info().Dur("idle_pause", a.cfg.IdlePause).Dur("pause", a.cfg.Pause).
		Msg("audit resting: the projector applied nothing during the pass; the next one starts after the idle pause, or after the pause once it applies a record")
	if err := sleep(ctx, time.Until(end.Add(a.cfg.Pause))); err != nil {
		return err
	}
	poll := min(max(a.cfg.Pause, 10*time.Millisecond), restPollMax)
	for {
		if a.p.writes.Load() != writes {
			a.m.wakes.WithLabelValues(WakeApplied).Inc()
			a.logger.Info().Dur("rested", time.Since(end)).Msg("audit waking: the projector applies records again")
			return nil
		}
		left := time.Until(end.Add(a.cfg.IdlePause))
		if left <= 0 {
			a.m.wakes.WithLabelValues(WakeIdlePause).Inc()
			a.logger.Info().Dur("rested", time.Since(end)).Msg("audit waking: idle pause over")
			return nil
		}
		if err := sleep(ctx, min(left, poll)); err != nil {
			return err
		}
	}
}

// PassResult counts what one pass did.
type PassResult struct {
	Aggregates, Rows int64 // checked
	Drift            int64 // drift found, every kind
	Repaired, Failed int64 // aggregates repaired, repairs that failed
	Parked           int64 // parked aggregates skipped
	Took             time.Duration
	DriftByKind      map[string]int64
}

// Pass walks event_store and the view's tables once, range by range, and
// repairs what drifted. It returns when every aggregate found behind
// event_store has been re-checked after its grace period.
func (a *Auditor[S]) Pass(ctx context.Context) (PassResult, error) {
	start := time.Now()
	res := PassResult{DriftByKind: map[string]int64{}}
	a.cpu.reset()
	for _, rg := range eventstore.SplitTokens(a.cfg.Ranges) {
		err := a.p.store.HeadsInRange(ctx, rg, func(h eventstore.Head) error {
			if h.AggregateType != a.p.view.AggregateType {
				return nil
			}
			if err := a.step(ctx); err != nil {
				return err
			}
			res.Aggregates++
			a.m.checked.Inc()
			a.measure(func() { a.checkAggregate(ctx, &res, h.AggregateID, h.Current) })
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("walking event_store (tokens %d..%d): %w", rg.First, rg.Last, err)
		}
		if a.rows != nil {
			err = a.rows.Scan(ctx, rg, func(r AuditRow) error {
				if err := a.step(ctx); err != nil {
					return err
				}
				res.Rows++
				a.m.rowsChecked.Inc()
				a.measure(func() { a.checkRow(ctx, &res, r) })
				return nil
			})
			if err != nil {
				return res, fmt.Errorf("walking the rows of %s (tokens %d..%d): %w", a.p.view.Name, rg.First, rg.Last, err)
			}
		}
		a.recheckDue(ctx, &res)
	}
	if err := a.drain(ctx, &res); err != nil {
		return res, err
	}
	res.Took = time.Since(start)
	a.m.passDuration.Set(res.Took.Seconds())
	a.m.lastComplete.SetToCurrentTime()
	a.m.passes.Inc()
	return res, nil
}

// switchPoll is how often the auditor looks whether a switch of
// generations it waits out is over.
const switchPoll = 100 * time.Millisecond

// step paces the checks and keeps the CPU budget; it waits out a switch of
// the view's generations (a rebuild beside the live one is no reason to
// stop: the live generation is kept current, and audited).
func (a *Auditor[S]) step(ctx context.Context) error {
	for a.p.switching.Load() {
		if err := sleep(ctx, switchPoll); err != nil {
			return err
		}
	}
	if d := a.cpu.debt(); d > 0 {
		a.m.throttled.Add(d.Seconds())
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	return a.pace.wait(ctx)
}

func (a *Auditor[S]) measure(f func()) {
	used := a.cpu.measure(f)
	a.m.cpu.Add(used.Seconds())
}

// drain re-checks the aggregates left behind event_store once their grace
// period is over.
func (a *Auditor[S]) drain(ctx context.Context, res *PassResult) error {
	for len(a.pending) > 0 {
		next := time.Time{}
		for _, pc := range a.pending {
			if next.IsZero() || pc.due.Before(next) {
				next = pc.due
			}
		}
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
		a.recheckDue(ctx, res)
	}
	return nil
}

// inspection is what one look at an aggregate found.
type inspection[S any] struct {
	parked bool
	head   int64 // current_sequence
	found  bool  // a checkpoint exists
	cp     checkpoint[S]
	behind bool     // the checkpoint is behind the head
	kinds  []string // drift found (when not behind)
	strays []AuditRow
	detail string
}

// inspect compares an aggregate with its checkpoint and rows, and checks
// that the candidate stray rows are still there and still stray.
func (a *Auditor[S]) inspect(ctx context.Context, id gocql.UUID, candidates []AuditRow) (inspection[S], error) {
	return a.inspectAt(ctx, id, candidates, -1)
}

// inspectAt is inspect with the aggregate's head already read (the walk
// of event_store has it), or -1 to read it.
func (a *Auditor[S]) inspectAt(ctx context.Context, id gocql.UUID, candidates []AuditRow, head int64) (inspection[S], error) {
	var in inspection[S]
	if a.p.isParked(ctx, id) {
		in.parked = true
		return in, nil
	}
	given := head >= 0
	if !given {
		var typ string
		var err error
		head, typ, err = a.p.store.Version(ctx, id)
		if err != nil {
			return in, err
		}
		if typ != "" && typ != a.p.view.AggregateType {
			head = 0 // not an aggregate of this view: none of its rows should exist
		}
	}
	in.head = head
	seq, state, found, err := a.p.checkpoints.Load(ctx, a.p.auditCheckpointName(), id)
	if err != nil {
		return in, err
	}
	in.found = found
	if found {
		in.cp = checkpoint[S]{seq: seq, existed: true}
		if err := json.Unmarshal([]byte(state), &in.cp.state); err != nil {
			// What the live consumer would park on: the fold of the events
			// replaces it.
			in.kinds = append(in.kinds, DriftWrongContent)
			in.detail = "checkpointed state unreadable: " + err.Error()
			in.strays = a.stillThere(ctx, candidates)
			return in, nil
		}
	}
	if head == 0 {
		in.strays = a.stillThere(ctx, candidates)
		if len(in.strays) > 0 {
			in.kinds = append(in.kinds, DriftStrayRow)
			in.detail = "rows of an aggregate without events"
		}
		return in, nil
	}
	if !found || seq < head {
		in.behind = true
		in.strays = candidates
		return in, nil
	}
	if seq > head && given {
		return a.inspectAt(ctx, id, candidates, -1) // applied since the walk read the head
	}
	if seq > head {
		return in, fmt.Errorf("the checkpoint of %s is at %d, ahead of event_store's %d", id, seq, head)
	}
	if a.cfg.Fold {
		folded, err := a.fold(ctx, id, head)
		if err != nil {
			return in, err
		}
		if d1, d2 := digest(folded), digest(in.cp.state); d1 != d2 {
			in.kinds = append(in.kinds, DriftWrongContent)
			in.detail = "checkpointed state differs from the fold of the events"
		}
	}
	if a.rows == nil || a.p.view.Audit == nil || a.p.view.Audit.Want == nil {
		return in, nil
	}
	want, err := a.p.view.Audit.Want(id, in.cp.state, seq)
	if err != nil {
		return in, err
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Table+" "+w.Key] = true
		got, ok, err := a.rows.Read(ctx, w)
		if err != nil {
			return in, err
		}
		switch {
		case !ok:
			in.kinds = appendKind(in.kinds, DriftMissingRow)
			in.detail = fmt.Sprintf("%s %s missing", w.Table, w.Key)
		case got.Version < w.Version:
			in.kinds = appendKind(in.kinds, DriftStaleVersion)
			in.detail = fmt.Sprintf("%s %s at version %d, want %d", w.Table, w.Key, got.Version, w.Version)
		case got.Digest != w.Digest:
			in.kinds = appendKind(in.kinds, DriftWrongContent)
			in.detail = fmt.Sprintf("%s %s differs: got %s, want %s", w.Table, w.Key, got.Digest, w.Digest)
		}
	}
	for _, r := range a.stillThere(ctx, candidates) {
		if !wanted[r.Table+" "+r.Key] {
			in.strays = append(in.strays, r)
		}
	}
	if len(in.strays) > 0 {
		in.kinds = appendKind(in.kinds, DriftStrayRow)
		if in.detail == "" {
			in.detail = fmt.Sprintf("%d rows no event calls for, e.g. %s %s", len(in.strays), in.strays[0].Table, in.strays[0].Key)
		}
	}
	return in, nil
}

// stillThere returns the rows of candidates that can still be read.
func (a *Auditor[S]) stillThere(ctx context.Context, candidates []AuditRow) []AuditRow {
	if a.rows == nil {
		return nil
	}
	var out []AuditRow
	for _, c := range candidates {
		if r, ok, err := a.rows.Read(ctx, c); err == nil && ok {
			out = append(out, r)
		}
	}
	return out
}

func appendKind(kinds []string, k string) []string {
	if slices.Contains(kinds, k) {
		return kinds
	}
	return append(kinds, k)
}

// fold reads and folds the aggregate's events through head.
func (a *Auditor[S]) fold(ctx context.Context, id gocql.UUID, head int64) (S, error) {
	var events []eventstore.Event
	if err := a.p.store.Events(ctx, id, 0, head, func(e eventstore.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		var zero S
		return zero, err
	}
	return a.foldAll(id, events, head)
}

// foldAll folds an aggregate's events, which must be all of them through
// head.
func (a *Auditor[S]) foldAll(id gocql.UUID, events []eventstore.Event, head int64) (S, error) {
	var s S
	if int64(len(events)) != head {
		return s, fmt.Errorf("event_store has %d of the %d events of %s", len(events), head, id)
	}
	for _, e := range events {
		up, err := a.p.upcasters.Upcast(e)
		if err == nil {
			s, err = a.p.view.Fold(s, up)
		}
		if err != nil {
			return s, fmt.Errorf("event %d of %s cannot be folded (the live consumer parks it): %w", e.Sequence, id, err)
		}
	}
	return s, nil
}

// digest is the canonical form of a state: its JSON, the form in which the
// checkpoint keeps it.
func digest[S any](s S) string {
	b, err := json.Marshal(s)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	return string(b)
}

// checkAggregate looks at an aggregate without its lock; what looks wrong
// is confirmed under the lock and repaired.
func (a *Auditor[S]) checkAggregate(ctx context.Context, res *PassResult, id gocql.UUID, head int64) {
	in, err := a.inspectAt(ctx, id, nil, head)
	if err != nil {
		a.checkFailed(res, id, err)
		return
	}
	a.settle(ctx, res, id, in, nil)
}

// checkRow looks at a row found walking the view's tables: one that the
// aggregate's checkpointed state does not call for is a candidate stray.
func (a *Auditor[S]) checkRow(ctx context.Context, res *PassResult, r AuditRow) {
	seq, state, found, err := a.p.checkpoints.Load(ctx, a.p.auditCheckpointName(), r.AggregateID)
	if err != nil {
		a.checkFailed(res, r.AggregateID, err)
		return
	}
	if found && a.p.view.Audit != nil && a.p.view.Audit.Want != nil {
		var s S
		if json.Unmarshal([]byte(state), &s) == nil {
			want, err := a.p.view.Audit.Want(r.AggregateID, s, seq)
			if err == nil && slices.ContainsFunc(want, func(w AuditRow) bool { return w.Table == r.Table && w.Key == r.Key }) {
				return // wanted; its content is the aggregate walk's business
			}
		}
	}
	in, err := a.inspect(ctx, r.AggregateID, []AuditRow{r})
	if err != nil {
		a.checkFailed(res, r.AggregateID, err)
		return
	}
	a.settle(ctx, res, r.AggregateID, in, []AuditRow{r})
}

// settle acts on an unlocked inspection: nothing when clean, a deferral
// when behind, else a confirmation under the lock and a repair.
func (a *Auditor[S]) settle(ctx context.Context, res *PassResult, id gocql.UUID, in inspection[S], candidates []AuditRow) {
	switch {
	case in.parked:
		res.Parked++
		a.m.parked.Inc()
	case in.behind:
		a.deferCheck(id, in.head, candidates, 0)
	case len(in.kinds) > 0:
		a.confirm(ctx, res, id, candidates, 0, -1) // a first look: deferred, if at all, as one
	}
}

// deferCheck re-checks an aggregate behind event_store after the grace
// period.
func (a *Auditor[S]) deferCheck(id gocql.UUID, head int64, strays []AuditRow, redefer int) {
	if pc, ok := a.pending[id]; ok {
		pc.strays = append(pc.strays, strays...)
		a.pending[id] = pc
		return
	}
	if len(a.pending) >= a.cfg.MaxPending || redefer > auditMaxRedefer {
		a.m.deferred.Inc()
		return
	}
	a.pending[id] = pendingCheck{head: head, due: time.Now().Add(a.cfg.Grace), strays: strays, redefer: redefer}
}

// recheckDue re-checks the deferred aggregates whose grace period is over.
func (a *Auditor[S]) recheckDue(ctx context.Context, res *PassResult) {
	now := time.Now()
	for id, pc := range a.pending {
		if ctx.Err() != nil {
			return
		}
		if pc.due.After(now) {
			continue
		}
		delete(a.pending, id)
		a.measure(func() { a.confirm(ctx, res, id, pc.strays, pc.head, pc.redefer) })
	}
}

// confirm takes the aggregate's lock, inspects it again, and repairs the
// drift that is still there. seen is 0 at a first look: an aggregate behind
// event_store is deferred. After the grace period, seen is the head first
// seen: a checkpoint still below it is drift (unless the consumer is
// lagging: deferred again); one that reached it is not, whether or not the
// aggregate moved on since.
func (a *Auditor[S]) confirm(ctx context.Context, res *PassResult, id gocql.UUID, candidates []AuditRow, seen int64, redefer int) {
	deferTo, ok := a.confirmLocked(ctx, res, id, candidates, seen)
	if ok {
		a.deferCheck(id, deferTo, candidates, redefer+1)
	}
}

// confirmLocked is confirm under the lock; it returns the head to defer
// the aggregate at, if it is to be deferred.
func (a *Auditor[S]) confirmLocked(ctx context.Context, res *PassResult, id gocql.UUID, candidates []AuditRow, seen int64) (int64, bool) {
	defer a.p.lockAggregate(id)()
	in, err := a.inspect(ctx, id, candidates)
	if err != nil {
		a.checkFailed(res, id, err)
		return 0, false
	}
	switch {
	case in.parked:
		res.Parked++
		a.m.parked.Inc()
		return 0, false
	case in.behind && seen > 0 && a.p.lagging():
		// The consumer is behind its topic: the aggregate's records are
		// likely queued there, not lost. Look again later.
		return in.head, true
	case in.behind && seen > 0 && (!in.found || in.cp.seq < seen):
		in.kinds = []string{DriftStaleVersion}
		in.detail = fmt.Sprintf("checkpoint at %d, event_store at %d (at %d %s ago)", in.cp.seq, in.head, seen, a.cfg.Grace)
		if !in.found {
			in.kinds, in.detail = []string{DriftMissingRow}, fmt.Sprintf("no checkpoint, event_store at %d", in.head)
		}
	case in.behind && seen > 0:
		// It reached the version first seen and moved on: the projector
		// keeps up with it.
		return 0, false
	case in.behind:
		return in.head, true
	case len(in.kinds) == 0:
		return 0, false
	}
	a.found(res, id, in)
	a.repair(ctx, res, id, in.strays)
	return 0, false
}

// found counts and logs confirmed drift.
func (a *Auditor[S]) found(res *PassResult, id gocql.UUID, in inspection[S]) {
	for _, k := range in.kinds {
		res.Drift++
		res.DriftByKind[k]++
		a.m.drift.WithLabelValues(k).Inc()
	}
	a.logger.Warn().Str(logging.FieldAggregateID, id.String()).Strs("kinds", in.kinds).Int64("checkpoint", in.cp.seq).Int64("event_store", in.head).
		Str("detail", in.detail).Msg("read model drifted from event_store; repairing")
}

func (a *Auditor[S]) checkFailed(res *PassResult, id gocql.UUID, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	res.Failed++
	a.m.errors.Inc()
	a.logger.Warn().Err(err).Str(logging.FieldAggregateID, id.String()).Msg("auditing an aggregate failed; it is checked again next pass")
}

// repair re-applies the aggregate from event_store, holding its lock (the
// caller took it): every event through the head folded from the start, the
// rows and then the checkpoint written at the head (Checkpoints.Commit),
// with the deletion of strays, and the consumer's cache updated. It repeats while
// the head moved meanwhile (another member's write may have landed under
// ours).
func (a *Auditor[S]) repair(ctx context.Context, res *PassResult, id gocql.UUID, strays []AuditRow) {
	err := a.repairOnce(ctx, id, strays)
	for round := 1; err == nil && round < auditRepairRounds; round++ {
		var head int64
		head, _, err = a.p.store.Version(ctx, id)
		if err != nil {
			break
		}
		cp, ok := a.p.cached(id)
		if !ok || cp.seq >= head {
			break
		}
		err = a.repairOnce(ctx, id, nil)
	}
	if err != nil {
		res.Failed++
		a.m.failed.Inc()
		a.logger.Error().Err(err).Str(logging.FieldAggregateID, id.String()).Msg("repairing an aggregate failed; it is checked again next pass")
		return
	}
	res.Repaired++
	a.m.repaired.Inc()
}

func (a *Auditor[S]) repairOnce(ctx context.Context, id gocql.UUID, strays []AuditRow) error {
	head, typ, err := a.p.store.Version(ctx, id)
	if err != nil {
		return err
	}
	if head == 0 || (typ != "" && typ != a.p.view.AggregateType) {
		if a.rows == nil || len(strays) == 0 {
			return nil
		}
		return a.rows.Remove(ctx, strays)
	}
	var events []eventstore.Event
	if err := a.p.store.Events(ctx, id, 0, head, func(e eventstore.Event) error {
		events = append(events, e)
		return nil
	}); err != nil {
		return err
	}
	state, err := a.foldAll(id, events, head)
	if err != nil {
		return err
	}
	// The rows the stored checkpoint calls for go too where the repaired
	// state does not (a status the order has left in the events the
	// projector missed): Write from nothing below never deletes.
	if a.rows != nil && a.p.view.Audit != nil && a.p.view.Audit.Want != nil {
		if seq, old, found, err := a.p.checkpoints.Load(ctx, a.p.auditCheckpointName(), id); err != nil {
			return err
		} else if found {
			var s S
			if json.Unmarshal([]byte(old), &s) == nil {
				if rows, err := a.p.view.Audit.Want(id, s, seq); err == nil {
					strays = append(slices.Clone(strays), rows...)
				}
			}
		}
	}
	// As the rebuild does: every row of the state written from nothing,
	// whatever was there, with the checkpoint at the head. parked=true:
	// should an event fail to fold meanwhile, the live consumer parks the
	// aggregate, not the auditor.
	if err := a.p.apply(ctx, id, checkpoint[S]{}, events, true); err != nil {
		return err
	}
	if len(strays) == 0 || a.rows == nil || a.p.view.Audit == nil || a.p.view.Audit.Want == nil {
		return nil
	}
	want, err := a.p.view.Audit.Want(id, state, head)
	if err != nil {
		return err
	}
	var deletions []AuditRow
	for _, s := range strays {
		same := func(r AuditRow) bool { return r.Table == s.Table && r.Key == s.Key }
		if !slices.ContainsFunc(want, same) && !slices.ContainsFunc(deletions, same) {
			deletions = append(deletions, s)
		}
	}
	if len(deletions) == 0 {
		return nil
	}
	return a.rows.Remove(ctx, deletions)
}

// pacer spaces calls every apart (a steady rate, no burst).
type pacer struct {
	every time.Duration
	next  time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	d := p.next.Sub(now)
	p.next = p.next.Add(p.every)
	return sleep(ctx, d)
}

// cpuBudget keeps the CPU time spent during the auditor's checks under a
// fraction of the wall time since the window started. The window restarts
// every cpuWindow, so that idle time long ago does not pay for a burst now.
type cpuBudget struct {
	budget float64
	now    func() time.Duration // the process's CPU time so far
	start  time.Time
	used   time.Duration
}

const cpuWindow = time.Minute

func (b *cpuBudget) reset() {
	b.start, b.used = time.Now(), 0
}

// measure runs f and returns the CPU time the process spent meanwhile.
func (b *cpuBudget) measure(f func()) time.Duration {
	c0 := b.now()
	f()
	used := max(b.now()-c0, 0)
	b.used += used
	return used
}

// debt is how long to sleep to be back under budget (at most a second at
// a time, so that shutdown is prompt).
func (b *cpuBudget) debt() time.Duration {
	if b.start.IsZero() || time.Since(b.start) > cpuWindow {
		b.reset()
		return 0
	}
	d := time.Duration(float64(b.used)/b.budget) - time.Since(b.start)
	return min(max(d, 0), time.Second)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d > 0 && backoff.Sleep(ctx, d) {
		return nil
	}
	return ctx.Err()
}

type auditMetrics struct {
	checked, rowsChecked, repaired, failed, errors, parked, deferred, passes prometheus.Counter
	cpu, throttled                                                           prometheus.Counter
	drift, wakes                                                             *prometheus.CounterVec
	passDuration, lastComplete, resting                                      prometheus.Gauge
}

func newAuditMetrics(name string, reg prometheus.Registerer) (*auditMetrics, error) {
	labels := prometheus.Labels{"projection": name}
	counter := func(n, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "audit_" + n, Help: help, ConstLabels: labels})
	}
	gauge := func(n, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "audit_" + n, Help: help, ConstLabels: labels})
	}
	m := &auditMetrics{
		checked:     counter("aggregates_checked_total", "Aggregates of event_store the auditor compared with the read model."),
		rowsChecked: counter("rows_checked_total", "Rows of the view's tables the auditor looked at for rows that should not exist."),
		repaired:    counter("repaired_total", "Aggregates whose drift the auditor repaired by re-applying them from event_store."),
		failed:      counter("failed_total", "Repairs that failed (checked again next pass)."),
		errors:      counter("errors_total", "Checks that failed to read event_store or the read model (checked again next pass)."),
		parked:      counter("parked_total", "Parked aggregates the auditor skipped (the dlq-service owns them)."),
		deferred:    counter("deferred_total", "Aggregates behind event_store left to the next pass (too many waiting out the grace period, or moving on)."),
		passes:      counter("passes_total", "Complete passes."),
		cpu:         counter("cpu_seconds_total", "Process CPU time spent while the auditor checked (what its budget counts)."),
		throttled:   counter("throttled_seconds_total", "Time the auditor slept to keep its CPU budget."),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "audit_drift_total",
			Help: "Drift found and confirmed, by kind: missing_row, stale_version, wrong_content, stray_row.", ConstLabels: labels}, []string{"kind"}),
		wakes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "projector", Name: "audit_wakes_total",
			Help: "Rests of the auditor that ended, by reason: applied (the projector applied a record), idle_pause (none for projector.audit.idle_pause).", ConstLabels: labels}, []string{"reason"}),
		resting:      gauge("resting", "1 while the auditor rests: the projector applied nothing during its last pass, so the next one waits for projector.audit.idle_pause or a record."),
		passDuration: gauge("pass_duration_seconds", "Duration of the last complete pass."),
		lastComplete: gauge("last_complete_pass_timestamp_seconds", "When the last pass completed (Unix time); the auditor's start until one has."),
	}
	for _, k := range DriftKinds() {
		m.drift.WithLabelValues(k)
	}
	for _, r := range []string{WakeApplied, WakeIdlePause} {
		m.wakes.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.checked, m.rowsChecked, m.repaired, m.failed, m.errors, m.parked, m.deferred, m.passes, m.cpu, m.throttled, m.drift, m.wakes, m.passDuration, m.lastComplete, m.resting} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("auditor: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}
