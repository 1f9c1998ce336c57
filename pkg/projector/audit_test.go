package projector_test

// Unit tests of the auditor with no server: the in-memory event store,
// checkpoints that also keep the rows their batches write (so that the
// view's "table" can be corrupted and read back), and a ViewRows over that
// table.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/projector"
)

// The audited view keeps, per order, the sequences folded; its one row is
// keyed by (bucket, id), the bucket being the parity of the number of
// events, so that a row moves between partitions as orders_by_status's
// rows do between statuses.
const (
	insertBucket = `INSERT INTO buckets (bucket, id, n, version) VALUES (?, ?, ?, ?)`
	deleteBucket = `DELETE FROM buckets WHERE bucket = ? AND id = ?`
	auditView    = "buckets"
)

type bucketRow struct {
	Bucket  string     `json:"bucket"`
	ID      gocql.UUID `json:"id"`
	N       int        `json:"n"`
	Version int64      `json:"version"`
}

func (r bucketRow) key() string { return r.Bucket + "/" + r.ID.String() }

func bucketOf(s tally) string {
	if len(s.Seqs)%2 == 0 {
		return "even"
	}
	return "odd"
}

func rowOf(id gocql.UUID, s tally, seq int64) bucketRow {
	return bucketRow{Bucket: bucketOf(s), ID: id, N: len(s.Seqs), Version: seq}
}

func auditRow(r bucketRow) projector.AuditRow {
	b, _ := json.Marshal(r)
	return projector.AuditRow{Table: auditView, Key: r.key(), AggregateID: r.ID, Version: r.Version, Digest: string(b), Value: r}
}

// table is the view's table: the rows the committed batches wrote.
type table struct {
	mu   sync.Mutex
	rows map[string]bucketRow
}

func (t *table) apply(entries []gocql.BatchEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range entries {
		switch e.Stmt {
		case insertBucket:
			r := bucketRow{Bucket: e.Args[0].(string), ID: e.Args[1].(gocql.UUID), N: e.Args[2].(int), Version: e.Args[3].(int64)}
			t.rows[r.key()] = r
		case deleteBucket:
			delete(t.rows, e.Args[0].(string)+"/"+e.Args[1].(gocql.UUID).String())
		default:
			panic("unexpected statement " + e.Stmt)
		}
	}
}

func (t *table) put(r bucketRow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows[r.key()] = r
}

func (t *table) del(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.rows, key)
}

func (t *table) snapshot() map[string]bucketRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.rows)
}

// tableCheckpoints keeps the checkpoints in MemoryCheckpoints and applies
// the rows of each committed batch to the table.
type tableCheckpoints struct {
	*projector.MemoryCheckpoints
	t *table
}

func (c tableCheckpoints) Commit(ctx context.Context, projection string, id gocql.UUID, seq int64, state string, rows func(*gocql.Batch) error) error {
	var entries []gocql.BatchEntry
	err := c.MemoryCheckpoints.Commit(ctx, projection, id, seq, state, func(b *gocql.Batch) error {
		err := rows(b)
		entries = b.Entries
		return err
	})
	if err == nil {
		c.t.apply(entries)
	}
	return err
}

// tableRows is the ViewRows of the table.
type tableRows struct{ t *table }

func (r tableRows) Read(_ context.Context, want projector.AuditRow) (projector.AuditRow, bool, error) {
	rows := r.t.snapshot()
	got, ok := rows[want.Key]
	if !ok {
		return projector.AuditRow{}, false, nil
	}
	return auditRow(got), true, nil
}

func (r tableRows) Scan(_ context.Context, rg eventstore.TokenRange, fn func(projector.AuditRow) error) error {
	rows := r.t.snapshot()
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		row := rows[k]
		if tok := memstore.Token(row.ID); tok < rg.First || tok > rg.Last {
			continue
		}
		if err := fn(auditRow(row)); err != nil {
			return err
		}
	}
	return nil
}

func (r tableRows) Delete(b *gocql.Batch, row projector.AuditRow) {
	v := row.Value.(bucketRow)
	b.Query(deleteBucket, v.Bucket, v.ID)
}

func (r tableRows) Remove(_ context.Context, rows []projector.AuditRow) error {
	for _, row := range rows {
		r.t.del(row.Key)
	}
	return nil
}

type auditUnit struct {
	unit
	t   *table
	a   *projector.Auditor[tally]
	reg *prometheus.Registry
}

func newAuditUnit(t *testing.T, grace time.Duration) *auditUnit {
	t.Helper()
	return newAuditUnitWith(t, grace, nil, nil)
}

// newAuditUnitWith is newAuditUnit with the auditor's config tuned and the
// projector's event store wrapped (either may be nil).
func newAuditUnitWith(t *testing.T, grace time.Duration, tune func(*projector.AuditConfig), wrap func(projector.EventStore) projector.EventStore) *auditUnit {
	t.Helper()
	store, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	u := &auditUnit{t: &table{rows: map[string]bucketRow{}}, reg: prometheus.NewRegistry()}
	u.store, u.cps, u.dlq = store, projector.NewMemoryCheckpoints(), deadletter.NewMemory()
	u.broken.Store(true)
	view := projector.View[tally]{
		Name: auditView, AggregateType: "order", Tables: []string{auditView},
		Fold: func(s tally, e eventstore.Event) (tally, error) {
			if e.Type == "Fragile" && u.broken.Load() {
				return s, fmt.Errorf("cannot fold %d", e.Sequence)
			}
			s.Seqs = append(s.Seqs, e.Sequence)
			return s, nil
		},
		Write: func(b *gocql.Batch, id gocql.UUID, old tally, existed bool, s tally, seq int64) error {
			r := rowOf(id, s, seq)
			if existed && bucketOf(old) != r.Bucket {
				b.Query(deleteBucket, bucketOf(old), id)
			}
			b.Query(insertBucket, r.Bucket, r.ID, r.N, r.Version)
			return nil
		},
		Audit: &projector.ViewAudit[tally]{
			Want: func(id gocql.UUID, s tally, seq int64) ([]projector.AuditRow, error) {
				return []projector.AuditRow{auditRow(rowOf(id, s, seq))}, nil
			},
		},
	}
	cfg := projector.DefaultConfig()
	cfg.Retry.Every = time.Millisecond
	var es projector.EventStore = store
	if wrap != nil {
		es = wrap(store)
	}
	u.p, err = projector.New(cfg, view, nil, es, zerolog.Nop(), u.reg,
		projector.WithCheckpoints(tableCheckpoints{MemoryCheckpoints: u.cps, t: u.t}), projector.WithDeadLetters(u.dlq))
	require.NoError(t, err)
	acfg := projector.DefaultAuditConfig()
	acfg.Rate, acfg.CPUBudget, acfg.Ranges, acfg.Grace = 1e6, 1, 4, grace
	if tune != nil {
		tune(&acfg)
	}
	u.a, err = projector.NewAuditor(u.p, acfg, tableRows{u.t}, u.reg)
	require.NoError(t, err)
	return u
}

// applied commits an order of n events and applies them all.
func (u *auditUnit) applied(t *testing.T, n int) gocql.UUID {
	t.Helper()
	types := make([]string, n)
	for i := range types {
		types[i] = "A"
	}
	id := u.commit(t, types...)
	require.NoError(t, u.handle(t, id, int64(n)))
	return id
}

// checkpoint is the checkpoint of id: its sequence and the sequences
// folded.
func (u *auditUnit) checkpoint(t *testing.T, id gocql.UUID) (int64, []int64) {
	t.Helper()
	seq, state, _, found := u.cps.Get(auditView, id)
	if !found {
		return 0, nil
	}
	var s tally
	require.NoError(t, json.Unmarshal([]byte(state), &s))
	return seq, s.Seqs
}

func (u *auditUnit) pass(t *testing.T) projector.PassResult {
	t.Helper()
	res, err := u.a.Pass(context.Background())
	require.NoError(t, err)
	return res
}

// requireExact checks that the table and the checkpoints are the fold of
// every aggregate's events, each applied once.
func (u *auditUnit) requireExact(t *testing.T, ids ...gocql.UUID) {
	t.Helper()
	want := map[string]bucketRow{}
	for _, id := range ids {
		head, _, err := u.store.Version(context.Background(), id)
		require.NoError(t, err)
		var s tally
		for i := int64(1); i <= head; i++ {
			s.Seqs = append(s.Seqs, i)
		}
		r := rowOf(id, s, head)
		want[r.key()] = r
		seq, seqs := u.checkpoint(t, id)
		require.Equal(t, head, seq, "checkpoint of %s", id)
		require.Equal(t, s.Seqs, seqs, "each event of %s folded once, in order", id)
	}
	require.Equal(t, want, u.t.snapshot())
}

func (u *auditUnit) metric(name string, labels ...string) float64 {
	return metricValue(nil, u.reg, name, labels...)
}

// metricValue is the value of orderstream_projector_audit_<name> with the
// labels (name, value pairs) in reg; -1 when there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	families, err := reg.Gather()
	if t != nil {
		require.NoError(t, err)
	}
	for _, f := range families {
		if f.GetName() != "orderstream_projector_audit_"+name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// Each way a view drifts is found, counted by its kind, and repaired
// within one pass; a clean view is left alone.
func TestAuditFindsAndRepairsEachKindOfDrift(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, u *auditUnit, id gocql.UUID)
		kind    string // "": no drift
	}{
		{name: "clean", corrupt: func(*testing.T, *auditUnit, gocql.UUID) {}},
		{name: "row deleted", kind: projector.DriftMissingRow, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.t.del("odd/" + id.String())
		}},
		{name: "row at a stale version", kind: projector.DriftStaleVersion, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.t.put(bucketRow{Bucket: "odd", ID: id, N: 3, Version: 2})
		}},
		{name: "row edited by hand", kind: projector.DriftWrongContent, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.t.put(bucketRow{Bucket: "odd", ID: id, N: 42, Version: 3})
		}},
		{name: "row left in a partition the aggregate left", kind: projector.DriftStrayRow, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.t.put(bucketRow{Bucket: "even", ID: id, N: 2, Version: 2})
		}},
		{name: "row moved to the wrong partition by hand", kind: projector.DriftMissingRow, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.t.del("odd/" + id.String())
			u.t.put(bucketRow{Bucket: "even", ID: id, N: 3, Version: 3})
		}},
		{name: "write lost: checkpoint and row behind event_store", kind: projector.DriftStaleVersion, corrupt: func(t *testing.T, u *auditUnit, id gocql.UUID) {
			u.cps.Put(auditView, id, 2, `{"seqs":[1,2]}`)
			u.t.del("odd/" + id.String())
			u.t.put(bucketRow{Bucket: "even", ID: id, N: 2, Version: 2})
		}},
		{name: "checkpointed state corrupted", kind: projector.DriftWrongContent, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.cps.Put(auditView, id, 3, `{"seqs":[1,2,2]}`)
		}},
		{name: "checkpointed state unreadable", kind: projector.DriftWrongContent, corrupt: func(_ *testing.T, u *auditUnit, id gocql.UUID) {
			u.cps.Put(auditView, id, 3, `{"seqs":"garbled"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newAuditUnit(t, 0)
			id := u.applied(t, 3)
			other := u.applied(t, 2)
			tc.corrupt(t, u, id)
			res := u.pass(t)
			require.Equal(t, int64(2), res.Aggregates)
			require.Equal(t, 2.0, u.metric("aggregates_checked_total"))
			if tc.kind == "" {
				require.Zero(t, res.Drift)
				require.Zero(t, res.Repaired)
			} else {
				require.Positive(t, res.Drift, "%+v", res)
				require.Positive(t, res.Repaired, "%+v", res)
				require.Equal(t, float64(res.Repaired), u.metric("repaired_total"))
				require.Positive(t, res.DriftByKind[tc.kind], "%+v", res.DriftByKind)
				require.Positive(t, u.metric("drift_total", "kind", tc.kind))
			}
			u.requireExact(t, id, other)
			again := u.pass(t)
			require.Zero(t, again.Drift, "repaired for good: %+v", again)
			require.Equal(t, 2.0, u.metric("passes_total"))
			require.Positive(t, u.metric("last_complete_pass_timestamp_seconds"))
		})
	}
}

// An aggregate the projector never applied (its records lost, its
// checkpoint never written) is applied.
func TestAuditAppliesAnAggregateNeverProjected(t *testing.T) {
	u := newAuditUnit(t, 0)
	id := u.commit(t, "A", "A")
	res := u.pass(t)
	require.Equal(t, int64(1), res.DriftByKind[projector.DriftMissingRow], "%+v", res)
	require.Equal(t, int64(1), res.Repaired)
	u.requireExact(t, id)
}

// A row of an aggregate event_store does not have is deleted.
func TestAuditDeletesRowsOfAggregatesWithoutEvents(t *testing.T) {
	u := newAuditUnit(t, 0)
	id := u.applied(t, 1)
	ghost := gocql.TimeUUID()
	u.t.put(bucketRow{Bucket: "odd", ID: ghost, N: 1, Version: 1})
	res := u.pass(t)
	require.Equal(t, int64(1), res.DriftByKind[projector.DriftStrayRow], "%+v", res)
	require.Equal(t, int64(1), res.Repaired)
	u.requireExact(t, id)
}

// A parked aggregate belongs to the dlq-service: counted, never touched.
func TestAuditSkipsParkedAggregates(t *testing.T) {
	u := newAuditUnit(t, 0)
	id := u.commit(t, "A", "Fragile", "A")
	require.NoError(t, u.handle(t, id, 3)) // 1 applied, 2 dead-lettered, the aggregate parked
	seq, _ := u.checkpoint(t, id)
	require.Equal(t, int64(1), seq)
	res := u.pass(t)
	require.Equal(t, int64(1), res.Parked)
	require.Zero(t, res.Drift)
	require.Equal(t, 1.0, u.metric("parked_total"))
	seq, _ = u.checkpoint(t, id)
	require.Equal(t, int64(1), seq, "left where the projector parked it")
}

// An aggregate behind event_store only because its records are in flight
// is not drift: the projector reaches the version first seen within the
// grace period.
func TestAuditWaitsOutRecordsInFlight(t *testing.T) {
	u := newAuditUnit(t, 300*time.Millisecond)
	id := u.applied(t, 2)
	_, err := u.store.Append(context.Background(), "order", id, 2, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "A", Version: 1, Data: []byte(`{}`)}})
	require.NoError(t, err)
	type result struct {
		res projector.PassResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := u.a.Pass(context.Background())
		done <- result{res, err}
	}()
	// The record arrives while the auditor waits out the grace period.
	require.NoError(t, u.handle(t, id, 3))
	r := <-done
	require.NoError(t, r.err)
	res := r.res
	require.Zero(t, res.Drift, "%+v", res)
	u.requireExact(t, id)
}

// Repairs race safely with live consumption: while passes repair rows
// deleted again and again, records keep arriving; every event is applied
// exactly once, in order, and the table ends exact.
func TestAuditRepairsRaceSafelyWithLiveRecords(t *testing.T) {
	u := newAuditUnit(t, 0)
	ids := []gocql.UUID{u.applied(t, 1), u.applied(t, 1), u.applied(t, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	passErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			for _, id := range ids {
				u.t.del("odd/" + id.String())
				u.t.del("even/" + id.String())
			}
			if _, err := u.a.Pass(ctx); err != nil && ctx.Err() == nil {
				passErr <- err
				return
			}
		}
		passErr <- nil
	}()
	for seq := int64(2); seq <= 40; seq++ {
		for _, id := range ids {
			_, err := u.store.Append(context.Background(), "order", id, seq-1, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "A", Version: 1, Data: []byte(`{}`)}})
			require.NoError(t, err)
			if seq%3 != 0 { // some records are "lost": the next one fills the gap, or the auditor does
				require.NoError(t, u.handle(t, id, seq))
			}
		}
	}
	cancel()
	require.NoError(t, <-passErr)
	u.pass(t)
	u.requireExact(t, ids...)
	require.Positive(t, testutil.ToFloat64(u.p.Metrics().Applied))
}

func TestAuditConfigValidate(t *testing.T) {
	require.NoError(t, projector.DefaultAuditConfig().Validate())
	bad := projector.DefaultAuditConfig()
	bad.Rate, bad.CPUBudget, bad.Ranges, bad.Grace, bad.MaxPending = 0, 65, 0, -time.Second, 0
	err := bad.Validate()
	for _, key := range []string{"rate", "cpu_budget", "ranges", "grace", "max_pending"} {
		require.ErrorContains(t, err, fmt.Sprintf("%q", key))
	}
	cfg := projector.DefaultConfig()
	cfg.Audit.Rate = -1
	require.ErrorContains(t, cfg.Validate(), `"audit.rate"`)

	require.Equal(t, time.Hour, projector.DefaultAuditConfig().IdlePause)
	require.Less(t, projector.DefaultAuditConfig().IdlePause, 6*time.Hour, "well below the OrderstreamReadModelAuditOverdue alert")
	for _, idle := range []time.Duration{0, -time.Minute, projector.DefaultAuditConfig().Pause - time.Second} {
		bad := projector.DefaultAuditConfig()
		bad.IdlePause = idle
		require.ErrorContains(t, bad.Validate(), `"idle_pause"`, "idle_pause %s", idle)
	}
	ok := projector.DefaultAuditConfig()
	ok.IdlePause = ok.Pause
	require.NoError(t, ok.Validate(), "idle_pause may equal pause")
	cfg = projector.DefaultConfig()
	cfg.Audit.IdlePause = time.Minute
	require.ErrorContains(t, cfg.Validate(), `"audit.idle_pause"`)
}

// run runs the auditor's worker (its rests between passes included);
// stop ends it and checks it stopped resting.
func (u *auditUnit) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.a.Worker().Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			require.Zero(t, u.metric("resting"), "a stopped auditor does not rest")
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually waits until the metrics satisfy ok.
func (u *auditUnit) eventually(t *testing.T, ok func() bool, what string) {
	t.Helper()
	require.Eventually(t, ok, 10*time.Second, time.Millisecond, what)
}

// passStart is when the last complete pass began (Unix seconds), from its
// end and its duration.
func (u *auditUnit) passStart() float64 {
	return u.metric("last_complete_pass_timestamp_seconds") - u.metric("pass_duration_seconds")
}

// appendApplied appends one event to id (at head) and applies its record.
func (u *auditUnit) appendApplied(t *testing.T, id gocql.UUID, head int64) {
	t.Helper()
	_, err := u.store.Append(context.Background(), "order", id, head, []eventstore.Event{{EventID: gocql.TimeUUID(), Type: "A", Version: 1, Data: []byte(`{}`)}})
	require.NoError(t, err)
	require.NoError(t, u.handle(t, id, head+1))
}

// While the view consumes nothing the auditor rests after a pass: no pass
// follows after the pause. A record applied wakes it, though not before the
// pause counted from the end of the last pass; after a pass during which
// nothing was applied it rests again.
func TestAuditRestsWhileTheViewConsumesNothing(t *testing.T) {
	const pause = 200 * time.Millisecond
	u := newAuditUnitWith(t, 0, func(c *projector.AuditConfig) { c.Pause, c.IdlePause = pause, time.Hour }, nil)
	id := u.applied(t, 2) // applied before the first pass began: no reason to come back
	require.Zero(t, u.metric("resting"))
	require.Zero(t, u.metric("wakes_total", "reason", projector.WakeApplied))
	require.Zero(t, u.metric("wakes_total", "reason", projector.WakeIdlePause))
	stop := u.run(t)
	u.eventually(t, func() bool { return u.metric("passes_total") == 1 && u.metric("resting") == 1 }, "resting after the first pass")
	end1 := u.metric("last_complete_pass_timestamp_seconds")

	// A record at once: the next pass starts a pause after the first ended.
	u.appendApplied(t, id, 2)
	u.eventually(t, func() bool { return u.metric("passes_total") == 2 && u.metric("resting") == 1 }, "a second pass, then resting again")
	require.GreaterOrEqual(t, u.passStart(), end1+pause.Seconds()-0.005, "not before the pause after the first pass")
	require.Equal(t, 1.0, u.metric("wakes_total", "reason", projector.WakeApplied))

	// Nothing applied during the second pass: no third after the pause.
	require.Never(t, func() bool { return u.metric("passes_total") > 2 }, 3*pause, 10*time.Millisecond, "resting while nothing is applied")
	require.Equal(t, 1.0, u.metric("resting"))

	u.appendApplied(t, id, 3)
	u.eventually(t, func() bool { return u.metric("passes_total") == 3 }, "woken by a record")
	require.Equal(t, 2.0, u.metric("wakes_total", "reason", projector.WakeApplied))
	require.Zero(t, u.metric("wakes_total", "reason", projector.WakeIdlePause))
	stop()
	require.Zero(t, u.metric("drift_total", "kind", projector.DriftStaleVersion))
	u.requireExact(t, id)
}

// With no record at all, a pass still comes every idle_pause, and finds
// what changed without a write of the projector (a row deleted by hand).
func TestAuditPassesEveryIdlePauseWhileIdle(t *testing.T) {
	const idle = 100 * time.Millisecond
	u := newAuditUnitWith(t, 0, func(c *projector.AuditConfig) { c.Pause, c.IdlePause = time.Millisecond, idle }, nil)
	id := u.applied(t, 1)
	began := time.Now()
	stop := u.run(t)
	u.eventually(t, func() bool { return u.metric("passes_total") == 1 && u.metric("resting") == 1 }, "resting after the first pass")
	u.t.del("odd/" + id.String())
	u.eventually(t, func() bool { return u.metric("repaired_total") == 1 }, "the next idle pass repairs a hand edit")
	u.eventually(t, func() bool { return u.metric("passes_total") >= 4 }, "idle passes go on")
	stop()
	require.GreaterOrEqual(t, time.Since(began), 2*idle, "two idle pauses at least")
	require.GreaterOrEqual(t, u.metric("wakes_total", "reason", projector.WakeIdlePause), 2.0)
	require.Equal(t, 1.0, u.metric("drift_total", "kind", projector.DriftMissingRow))
	u.requireExact(t, id)
}

// failingHeads fails the first walks of event_store.
type failingHeads struct {
	projector.EventStore
	fails atomic.Int32
}

func (f *failingHeads) HeadsInRange(ctx context.Context, rg eventstore.TokenRange, fn func(eventstore.Head) error) error {
	if f.fails.Add(-1) >= 0 {
		return errors.New("event_store unavailable")
	}
	return f.EventStore.HeadsInRange(ctx, rg, fn)
}

// A pass cut short by an error is no reason to rest: the next starts after
// the pause, even while nothing is applied.
func TestAuditRetriesAPassCutShortAfterThePause(t *testing.T) {
	f := &failingHeads{}
	f.fails.Store(2)
	u := newAuditUnitWith(t, 0, func(c *projector.AuditConfig) { c.Pause, c.IdlePause = time.Millisecond, time.Hour },
		func(s projector.EventStore) projector.EventStore { f.EventStore = s; return f })
	id := u.applied(t, 1)
	u.run(t)
	u.eventually(t, func() bool { return u.metric("passes_total") == 1 && u.metric("resting") == 1 }, "a complete pass after two cut short")
	require.Less(t, f.fails.Load(), int32(0), "both failures were passes")
	require.Zero(t, u.metric("wakes_total", "reason", projector.WakeIdlePause))
	u.requireExact(t, id)
}
