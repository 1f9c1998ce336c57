package projector_test

// Unit tests of the rebuild into a new generation, with the in-memory
// twins: event store, checkpoints, dead letters and generations.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/eventstore/memstore"
	"github.com/orderstream/orderstream/pkg/projector"
)

// failingStore fails Events once failAfter calls have been made, while
// set, as an event store that goes away mid-rebuild does.
type failingStore struct {
	*memstore.Store
	calls, failAfter atomic.Int64
}

var errGone = errors.New("event store unreachable")

func (s *failingStore) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error {
	if n := s.calls.Add(1); s.failAfter.Load() > 0 && n > s.failAfter.Load() {
		return errGone
	}
	return s.Store.Events(ctx, id, after, upTo, fn)
}

type genUnit struct {
	p     *projector.Projector[tally]
	store *failingStore
	mem   *memstore.Store
	cps   *projector.MemoryCheckpoints
	gens  *projector.MemoryGenerations
	loads atomic.Int64 // the projector's reads of the generations
}

// countedGenerations counts a projector's reads of its generations.
type countedGenerations struct {
	*projector.MemoryGenerations
	loads *atomic.Int64
}

func (g countedGenerations) Load(ctx context.Context, view string) (projector.Generations, error) {
	g.loads.Add(1)
	return g.MemoryGenerations.Load(ctx, view)
}

// tallyAt is the tally view writing generation gen's table.
func tallyAt(gen int) projector.View[tally] {
	table := projector.TableName("tally", gen)
	return projector.View[tally]{
		Name: viewName, AggregateType: "order", Tables: []string{table},
		Fold: func(s tally, e eventstore.Event) (tally, error) {
			s.Seqs = append(s.Seqs, e.Sequence)
			return s, nil
		},
		Write: func(b *gocql.Batch, id gocql.UUID, _ tally, _ bool, s tally, seq int64) error {
			b.Query(`UPDATE `+table+` SET n = ?, version = ? WHERE id = ?`, len(s.Seqs), seq, id)
			return nil
		},
		At: tallyAt,
		Schema: func(gen int) []string {
			return []string{`CREATE TABLE IF NOT EXISTS ` + projector.TableName("tally", gen) + ` (id uuid PRIMARY KEY)`}
		},
	}
}

func newGenUnit(t *testing.T, tweak ...func(*projector.Config)) *genUnit {
	t.Helper()
	mem, err := memstore.New(eventstore.DefaultConfig())
	require.NoError(t, err)
	u := &genUnit{store: &failingStore{Store: mem}, mem: mem, cps: projector.NewMemoryCheckpoints(), gens: projector.NewMemoryGenerations()}
	cfg := projector.DefaultConfig()
	cfg.Retry.Every = time.Millisecond
	cfg.GenerationRefresh = time.Millisecond
	cfg.GenerationMaxStale = 2 * time.Millisecond
	cfg.RebuildTakeover = 30 * time.Second
	cfg.RebuildRanges = 8
	cfg.RebuildParallelism = 2
	cfg.RebuildGrace = time.Hour
	for _, f := range tweak {
		f(&cfg)
	}
	u.p, err = projector.New(cfg, tallyAt(1), nil, u.store, zerolog.Nop(), prometheus.NewRegistry(),
		projector.WithCheckpoints(u.cps), projector.WithDeadLetters(deadletter.NewMemory()),
		projector.WithGenerations(countedGenerations{MemoryGenerations: u.gens, loads: &u.loads}))
	require.NoError(t, err)
	return u
}

// runWorker runs the rebuild worker until the returned stop is called.
func (u *genUnit) runWorker(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.p.RebuildWorker().Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// beginElsewhere begins a rebuild as a member that went silent an hour ago.
func (u *genUnit) beginElsewhere(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cur, err := u.gens.Load(ctx, viewName)
	require.NoError(t, err)
	_, err = u.gens.Begin(ctx, viewName, cur, "gone-member", time.Now().UnixMicro(), 8, time.Now().Add(-time.Hour))
	require.NoError(t, err)
}

func (u *genUnit) commit(t *testing.T, n int) gocql.UUID {
	t.Helper()
	id := gocql.TimeUUID()
	u.append(t, id, 0, n)
	return id
}

func (u *genUnit) append(t *testing.T, id gocql.UUID, expected int64, n int) {
	t.Helper()
	var events []eventstore.Event
	for range n {
		events = append(events, eventstore.Event{EventID: gocql.TimeUUID(), Type: "E", Version: 1, Data: []byte(`{}`)})
	}
	_, err := u.mem.Append(context.Background(), "order", id, expected, events)
	require.NoError(t, err)
}

func (u *genUnit) handle(t *testing.T, id gocql.UUID, seq int64) {
	t.Helper()
	var rec projector.Record
	require.NoError(t, u.mem.Events(context.Background(), id, seq-1, seq, func(e eventstore.Event) error {
		rec = projector.Record{AggregateID: id, Sequence: e.Sequence, Event: e}
		return nil
	}))
	require.NoError(t, u.p.Handle(context.Background(), rec))
}

// at is id's checkpoint in generation gen and the table its rows went to.
func (u *genUnit) at(t *testing.T, gen int, id gocql.UUID) (int64, []int64, string) {
	t.Helper()
	seq, state, rows, found := u.cps.Get(projector.CheckpointName(viewName, gen), id)
	if !found {
		return 0, nil, ""
	}
	var s tally
	require.NoError(t, json.Unmarshal([]byte(state), &s))
	table := ""
	if len(rows) > 0 {
		table = strings.Fields(rows[0].Stmt)[1]
	}
	return seq, s.Seqs, table
}

func TestTableAndCheckpointNames(t *testing.T) {
	require.Equal(t, "order_read_model", projector.TableName("order_read_model", 1))
	require.Equal(t, "order_read_model_g2", projector.TableName("order_read_model", 2))
	require.Equal(t, "order-read-model", projector.CheckpointName("order-read-model", 1))
	require.Equal(t, "order-read-model@g12", projector.CheckpointName("order-read-model", 12))
}

// A rebuild writes generation 2 beside generation 1: records that arrive
// meanwhile go to both, newest first; the scan brings every aggregate to
// its head; the switch makes 2 active and keeps 1 for the grace period;
// from then on records go to 2 (and to 1 while it retires).
func TestRebuildWritesANewGenerationAndSwitches(t *testing.T) {
	ctx := context.Background()
	u := newGenUnit(t)
	a, b := u.commit(t, 3), u.commit(t, 2)
	for seq := int64(1); seq <= 3; seq++ {
		u.handle(t, a, seq)
	}
	u.handle(t, b, 1) // b's 2 not consumed yet
	require.Equal(t, 1, u.p.ActiveGeneration())

	g, err := u.p.StartRebuild(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, g.Building)
	require.Equal(t, 1, g.Active)
	require.Equal(t, []string{`CREATE TABLE IF NOT EXISTS tally_g2 (id uuid PRIMARY KEY)`}, u.gens.Statements())
	_, err = u.p.StartRebuild(ctx)
	require.ErrorIs(t, err, projector.ErrRebuildRunning, "a second rebuild is refused")

	// A record while the rebuild runs: both generations, b's gap in
	// generation 2 filled from the event store.
	u.handle(t, b, 2)
	seq, seqs, table := u.at(t, 2, b)
	require.Equal(t, int64(2), seq)
	require.Equal(t, []int64{1, 2}, seqs)
	require.Equal(t, "tally_g2", table)
	seq, _, table = u.at(t, 1, b)
	require.Equal(t, int64(2), seq)
	require.Equal(t, "tally", table)

	require.NoError(t, u.p.Rebuild(ctx), "runs the started rebuild: scan and switch")
	for id, head := range map[gocql.UUID]int64{a: 3, b: 2} {
		seq, seqs, table := u.at(t, 2, id)
		require.Equal(t, head, seq)
		require.Len(t, seqs, int(head), "each event once")
		require.Equal(t, "tally_g2", table)
	}
	require.Equal(t, 2, u.p.ActiveGeneration())
	require.Equal(t, "tally_g2", u.p.LiveTable("tally"))
	g, err = u.gens.Load(ctx, viewName)
	require.NoError(t, err)
	require.Equal(t, 2, g.Active)
	require.Zero(t, g.Building)
	require.Contains(t, g.Retiring, 1)
	require.True(t, g.Readable(1, time.Now()), "the old generation is readable during the grace period")

	// After the switch: generation 2 first, generation 1 kept current.
	u.append(t, a, 3, 1)
	u.handle(t, a, 4)
	seq, _, _ = u.at(t, 2, a)
	require.Equal(t, int64(4), seq)
	seq, _, _ = u.at(t, 1, a)
	require.Equal(t, int64(4), seq, "the retiring generation is kept current")

	st, err := u.p.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, "idle", st.State)
	require.Equal(t, 2, st.Active)
}

// A rebuild cut short (the event store went away mid-scan) resumes where
// it stopped: the finished token ranges are not scanned again.
func TestRebuildResumesAfterAFailure(t *testing.T) {
	ctx := context.Background()
	u := newGenUnit(t)
	var ids []gocql.UUID
	for range 40 {
		ids = append(ids, u.commit(t, 2))
	}
	_, err := u.p.StartRebuild(ctx)
	require.NoError(t, err)
	u.store.failAfter.Store(25)
	require.ErrorIs(t, u.p.Rebuild(ctx), errGone)
	g, err := u.gens.Load(ctx, viewName)
	require.NoError(t, err)
	require.Equal(t, 2, g.Building, "still building")
	require.Equal(t, 1, g.Active)
	done, err := u.gens.RangesDone(ctx, viewName, 2)
	require.NoError(t, err)
	require.NotEmpty(t, done, "some ranges finished before the failure")
	require.Less(t, len(done), 8)

	u.store.failAfter.Store(0)
	u.store.calls.Store(0)
	require.NoError(t, u.p.Rebuild(ctx), "resumed")
	var finished int64
	for _, rp := range done {
		finished += rp.Aggregates
	}
	require.LessOrEqual(t, u.store.calls.Load(), int64(40)-finished, "the finished ranges' aggregates are not read again")
	for _, id := range ids {
		seq, seqs, _ := u.at(t, 2, id)
		require.Equal(t, int64(2), seq, id)
		require.Equal(t, []int64{1, 2}, seqs)
	}
	require.Equal(t, 2, u.p.ActiveGeneration())
}

// A cancelled rebuild's generation is dropped, generation 1 stays
// active, and the next rebuild gets a generation of its own.
func TestCancelledRebuildIsDropped(t *testing.T) {
	ctx := context.Background()
	u := newGenUnit(t)
	u.commit(t, 1)
	_, err := u.p.CancelRebuild(ctx)
	require.ErrorIs(t, err, projector.ErrNoRebuild)
	_, err = u.p.StartRebuild(ctx)
	require.NoError(t, err)
	g, err := u.p.CancelRebuild(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, g.Active)

	// The rebuild worker drops it once no member writes it any more.
	stop := u.runWorker(t)
	require.Eventually(t, func() bool {
		g, err := u.gens.Load(ctx, viewName)
		return err == nil && len(g.Retiring) == 0
	}, 5*time.Second, 5*time.Millisecond)
	stop()
	require.Contains(t, u.gens.Statements(), `DROP TABLE IF EXISTS tally_g2`)

	g, err = u.p.StartRebuild(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, g.Building, "a generation's name is never reused")
	require.Equal(t, 1, g.Active)
}

// The worker runs a rebuild started elsewhere once its owner is silent
// for rebuild_takeover: one begun before the worker starts, and one begun
// while the worker idles (it sees it at generation_idle_refresh).
func TestSilentRebuildIsTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool
	}{{"begun before the worker starts", true}, {"begun while the worker idles", false}} {
		t.Run(tc.name, func(t *testing.T) {
			u := newGenUnit(t, func(c *projector.Config) { c.GenerationIdleRefresh = 20 * time.Millisecond })
			id := u.commit(t, 2)
			if tc.before {
				u.beginElsewhere(t)
			}
			stop := u.runWorker(t)
			if !tc.before {
				require.Eventually(t, func() bool { return u.loads.Load() >= 1 }, 5*time.Second, time.Millisecond)
				u.beginElsewhere(t)
			}
			require.Eventually(t, func() bool { return u.p.ActiveGeneration() == 2 }, 10*time.Second, 5*time.Millisecond)
			stop()
			seq, _, table := u.at(t, 2, id)
			require.Equal(t, int64(2), seq)
			require.Equal(t, "tally_g2", table)
		})
	}
}

// An idle member (no record applied, nothing being built or retired)
// re-reads its generations every generation_idle_refresh, not every
// generation_refresh; a record applied brings the fast pace back, and a
// record applied after a long pause reads them itself first.
func TestIdleMemberReadsGenerationsRarely(t *testing.T) {
	ctx := context.Background()
	u := newGenUnit(t, func(c *projector.Config) { c.GenerationIdleRefresh = time.Hour })
	defer u.runWorker(t)()
	require.Eventually(t, func() bool { return u.loads.Load() == 1 }, 5*time.Second, time.Millisecond, "the first round reads them")
	time.Sleep(100 * time.Millisecond) // 100 rounds of generation_refresh (1ms)
	require.Equal(t, int64(1), u.loads.Load(), "idle: no read before generation_idle_refresh")

	// A record applied reads them first (they are older than
	// generation_refresh), and the worker reads them again at its pace.
	id := u.commit(t, 1)
	u.handle(t, id, 1)
	require.Eventually(t, func() bool { return u.loads.Load() >= 3 }, 5*time.Second, time.Millisecond)
	seq, _, table := u.at(t, 1, id)
	require.Equal(t, int64(1), seq)
	require.Equal(t, "tally", table)
	// Idle again once the worker has read them after the last write.
	time.Sleep(20 * time.Millisecond)
	n := u.loads.Load()
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, n, u.loads.Load(), "idle again")

	// Asked for a rebuild, the worker is woken and runs it at once.
	_, err := u.p.StartRebuild(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return u.p.ActiveGeneration() == 2 }, 10*time.Second, time.Millisecond)
}

// A view without generations cannot be rebuilt beside the live one.
func TestViewWithoutGenerationsIsNotRebuilt(t *testing.T) {
	u := newUnit(t)
	_, err := u.p.StartRebuild(context.Background())
	require.Error(t, err)
	require.Contains(t, fmt.Sprint(err), "no generations")
}

// A member that cannot re-read the generations for longer than
// generation_max_stale stops applying records (retried): it might miss a
// rebuild's new generation.
func TestStaleGenerationsStopTheConsumer(t *testing.T) {
	u := newGenUnit(t)
	id := u.commit(t, 2)
	u.handle(t, id, 1)
	u.gens.Fail(errGone)
	time.Sleep(5 * time.Millisecond) // past generation_max_stale (2ms)
	var rec projector.Record
	require.NoError(t, u.mem.Events(context.Background(), id, 1, 2, func(e eventstore.Event) error {
		rec = projector.Record{AggregateID: id, Sequence: e.Sequence, Event: e}
		return nil
	}))
	require.ErrorIs(t, u.p.Handle(context.Background(), rec), errGone)
	u.gens.Fail(nil)
	require.NoError(t, u.p.Handle(context.Background(), rec))
	seq, _, _ := u.at(t, 1, id)
	require.Equal(t, int64(2), seq)
}

// The admin endpoints: POST starts (202) and refuses a second (409), GET
// shows the progress, DELETE cancels (202) and answers 409 when none runs.
func TestRebuildEndpoints(t *testing.T) {
	u := newGenUnit(t)
	u.commit(t, 1)
	do := func(method string, h http.HandlerFunc) (int, map[string]any) {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(method, "/rebuild", nil))
		var body map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
		return w.Code, body
	}
	code, body := do(http.MethodGet, u.p.StatusHandler)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "idle", body["state"])
	code, body = do(http.MethodPost, u.p.RebuildHandler)
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, 2.0, body["building_generation"])
	code, _ = do(http.MethodPost, u.p.RebuildHandler)
	require.Equal(t, http.StatusConflict, code)
	code, body = do(http.MethodGet, u.p.StatusHandler)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "building", body["state"])
	require.Equal(t, 8.0, body["ranges_total"])
	require.Equal(t, 1.0, body["active_generation"])
	code, _ = do(http.MethodDelete, u.p.CancelHandler)
	require.Equal(t, http.StatusAccepted, code)
	code, _ = do(http.MethodDelete, u.p.CancelHandler)
	require.Equal(t, http.StatusConflict, code)
}
