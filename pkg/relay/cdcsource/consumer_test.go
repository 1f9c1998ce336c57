package cdcsource

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
	"github.com/stretchr/testify/require"
)

// fakeRow is a CDC log row built in the test, holding values the way the
// library represents them: pointers to scalars, typed nil pointers for nulls.
type fakeRow struct {
	op   scyllacdc.OperationType
	cols map[string]any
}

func (r fakeRow) GetOperation() scyllacdc.OperationType { return r.op }

func (r fakeRow) GetValue(column string) (interface{}, bool) {
	v, ok := r.cols[column]
	return v, ok
}

func (r fakeRow) GetRawMapData() map[string]interface{} { return maps.Clone(r.cols) }

// with returns a copy of the row with column set to v; a nil v removes it.
func (r fakeRow) with(column string, v any) fakeRow {
	r.cols = maps.Clone(r.cols)
	if v == nil {
		delete(r.cols, column)
	} else {
		r.cols[column] = v
	}
	return r
}

func ptr[T any](v T) *T { return &v }

var (
	aggA = gocql.MustRandomUUID()
	aggB = gocql.MustRandomUUID()
)

// logRow is a row of event_store's CDC log with every base column null.
func logRow(op scyllacdc.OperationType, id gocql.UUID) fakeRow {
	return fakeRow{op: op, cols: map[string]any{
		"aggregate_id":       &id,
		"sequence_number":    (*int64)(nil),
		"aggregate_type":     (*string)(nil),
		"current_sequence":   (*int64)(nil),
		"published_sequence": (*int64)(nil),
		"updated_at":         (*time.Time)(nil),
		"event_id":           (*gocql.UUID)(nil),
		"event_type":         (*string)(nil),
		"event_version":      (*int)(nil),
		"event_data":         (*string)(nil),
		"causation_id":       (*string)(nil),
		"correlation_id":     (*string)(nil),
		"timestamp":          (*time.Time)(nil),
		"trace_context":      map[string]string(nil),
	}}
}

// eventRow is the log row of one event INSERT of a commit.
func eventRow(id gocql.UUID, seq int64) fakeRow {
	return logRow(scyllacdc.Insert, id).
		with("sequence_number", ptr(seq)).
		with("event_id", ptr(gocql.MustRandomUUID())).
		with("event_type", ptr("OrderCreated")).
		with("event_version", ptr(1)).
		with("event_data", ptr(`{}`)).
		with("timestamp", ptr(time.Now())).
		with("trace_context", map[string]string{"traceparent": "00-x"})
}

// staticRow is the log row of a commit's static-column write: an UPDATE
// even for the INSERT … IF NOT EXISTS of a new aggregate.
func staticRow(id gocql.UUID, current int64) fakeRow {
	return logRow(scyllacdc.Update, id).
		with("current_sequence", ptr(current)).
		with("updated_at", ptr(time.Now()))
}

type fakeMarker struct {
	saved []gocql.UUID
	err   error
}

func (m *fakeMarker) MarkProgress(_ context.Context, p scyllacdc.Progress) error {
	if m.err != nil {
		return m.err
	}
	m.saved = append(m.saved, p.LastProcessedRecordTime)
	return nil
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

type deadLetter struct {
	raw map[string]any
	err error
}

type harness struct {
	c        *consumer
	m        *sourceMetrics
	got      []Change
	dead     []deadLetter
	outages  []error
	marker   *fakeMarker
	clock    *fakeClock
	sinkErr  func(Change) error
	deadErr  error
	progErrs []error
}

func newHarness() *harness {
	h := &harness{m: newMetrics(), marker: &fakeMarker{}, clock: &fakeClock{t: time.Unix(1_700_000_000, 0)}}
	h.c = &consumer{
		streamID: scyllacdc.StreamID{0xAB, 0xCD},
		sink: func(_ context.Context, c Change) error {
			if h.sinkErr != nil {
				if err := h.sinkErr(c); err != nil {
					return err
				}
			}
			h.got = append(h.got, c)
			return nil
		},
		dead: func(_ context.Context, raw map[string]any, err error) error {
			h.dead = append(h.dead, deadLetter{raw, err})
			return h.deadErr
		},
		m:        h.m,
		log:      zerolog.Nop(),
		outage:   func(err error) { h.outages = append(h.outages, err) },
		progress: newProgressSaver(h.marker, time.Second, h.clock.now, func(err error) { h.progErrs = append(h.progErrs, err) }),
	}
	return h
}

func (h *harness) ignored(reason string) float64 {
	return testutil.ToFloat64(h.m.ignored.WithLabelValues(reason))
}

func TestConsumerHandsOnlyEventRowsToTheSink(t *testing.T) {
	type want struct {
		id  gocql.UUID
		seq int64
	}
	cases := []struct {
		name    string
		rows    []row
		want    []want
		ignored map[string]float64
		dead    int
	}{
		{
			name: "event row insert",
			rows: []row{eventRow(aggA, 1)},
			want: []want{{aggA, 1}},
		},
		{
			name:    "a new aggregate's commit: static insert then events",
			rows:    []row{staticRow(aggA, 3).with("aggregate_type", ptr("order")), eventRow(aggA, 1), eventRow(aggA, 2), eventRow(aggA, 3)},
			want:    []want{{aggA, 1}, {aggA, 2}, {aggA, 3}},
			ignored: map[string]float64{reasonStaticRow: 1},
		},
		{
			name:    "static-only update (relay's published_sequence)",
			rows:    []row{logRow(scyllacdc.Update, aggA).with("published_sequence", ptr(int64(4)))},
			ignored: map[string]float64{reasonStaticRow: 1},
		},
		{
			name:    "static-only row reported as insert",
			rows:    []row{logRow(scyllacdc.Insert, aggA).with("current_sequence", ptr(int64(1)))},
			ignored: map[string]float64{reasonStaticRow: 1},
		},
		{
			name: "event row reported as a row update that sets event columns",
			rows: []row{func() row { r := eventRow(aggB, 7); r.op = scyllacdc.Update; return r }()},
			want: []want{{aggB, 7}},
		},
		{
			name:    "row update that sets no event column",
			rows:    []row{logRow(scyllacdc.Update, aggA).with("sequence_number", ptr(int64(2))).with("cdc$deleted_causation_id", ptr(true))},
			ignored: map[string]float64{reasonUpdateWithoutEvent: 1},
		},
		{
			name: "pre-image and post-image",
			rows: []row{
				func() row { r := eventRow(aggA, 1); r.op = scyllacdc.PreImage; return r }(),
				eventRow(aggA, 2),
				func() row { r := eventRow(aggA, 2); r.op = scyllacdc.PostImage; return r }(),
			},
			want:    []want{{aggA, 2}},
			ignored: map[string]float64{reasonPreImage: 1, reasonPostImage: 1},
		},
		{
			name: "deletes",
			rows: []row{
				logRow(scyllacdc.RowDelete, aggA).with("sequence_number", ptr(int64(1))),
				logRow(scyllacdc.PartitionDelete, aggA),
				logRow(scyllacdc.RangeDeleteStartInclusive, aggA).with("sequence_number", ptr(int64(1))),
				logRow(scyllacdc.RangeDeleteEndExclusive, aggA).with("sequence_number", ptr(int64(5))),
			},
			ignored: map[string]float64{reasonDelete: 4},
		},
		{
			name:    "one event row logged twice in a group",
			rows:    []row{eventRow(aggA, 1), eventRow(aggA, 1)},
			want:    []want{{aggA, 1}},
			ignored: map[string]float64{reasonDuplicate: 1},
		},
		{
			name: "missing aggregate_id, later rows still processed",
			rows: []row{eventRow(aggA, 1).with("aggregate_id", nil), eventRow(aggB, 1)},
			want: []want{{aggB, 1}},
			dead: 1,
		},
		{
			name: "mistyped aggregate_id",
			rows: []row{eventRow(aggA, 1).with("aggregate_id", ptr(aggA.String())), eventRow(aggB, 1)},
			want: []want{{aggB, 1}},
			dead: 1,
		},
		{
			name: "null aggregate_id",
			rows: []row{eventRow(aggA, 1).with("aggregate_id", (*gocql.UUID)(nil)), eventRow(aggB, 1)},
			want: []want{{aggB, 1}},
			dead: 1,
		},
		{
			name: "missing sequence_number",
			rows: []row{eventRow(aggA, 1).with("sequence_number", nil), eventRow(aggA, 2)},
			want: []want{{aggA, 2}},
			dead: 1,
		},
		{
			name: "mistyped sequence_number",
			rows: []row{eventRow(aggA, 1).with("sequence_number", ptr(int32(1))), eventRow(aggA, 2).with("sequence_number", "2"), eventRow(aggA, 3)},
			want: []want{{aggA, 3}},
			dead: 2,
		},
		{
			name: "unknown operation",
			rows: []row{func() row { r := eventRow(aggA, 1); r.op = 42; return r }(), eventRow(aggA, 2)},
			want: []want{{aggA, 2}},
			dead: 1,
		},
		{
			name: "values as plain values rather than pointers",
			rows: []row{eventRow(aggA, 1).with("aggregate_id", aggA).with("sequence_number", int64(1))},
			want: []want{{aggA, 1}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			cdcTime := gocql.UUIDFromTime(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))

			require.NoError(t, h.c.handle(context.Background(), cdcTime, tc.rows))

			var got []want
			for _, c := range h.got {
				require.Equal(t, cdcTime.Time().UTC(), c.Time)
				got = append(got, want{c.AggregateID, c.Sequence})
			}
			require.Equal(t, tc.want, got)
			require.Len(t, h.dead, tc.dead)
			for _, d := range h.dead {
				require.Error(t, d.err)
				require.Equal(t, cdcTime.String(), d.raw["cdc$time"])
			}
			require.Empty(t, h.outages)
			require.Equal(t, float64(len(tc.want)), testutil.ToFloat64(h.m.processed))
			require.Equal(t, float64(tc.dead), testutil.ToFloat64(h.m.deadLettered))
			for _, reason := range ignoreReasons {
				require.Equal(t, tc.ignored[reason], h.ignored(reason), "ignored{reason=%q}", reason)
			}
		})
	}
}

func TestConsumerReturnsTheSinkErrorAndKeepsItsPosition(t *testing.T) {
	h := newHarness()
	down := errors.New("broker down")
	h.sinkErr = func(c Change) error {
		if c.Sequence == 2 {
			return down
		}
		return nil
	}
	h.clock.t = h.clock.t.Add(time.Hour) // any save would be due

	err := h.c.handle(context.Background(), gocql.TimeUUID(), []row{eventRow(aggA, 1), eventRow(aggA, 2), eventRow(aggA, 3)})

	require.ErrorIs(t, err, down)
	require.Len(t, h.outages, 1)
	require.ErrorIs(t, h.outages[0], down)
	require.Equal(t, float64(1), testutil.ToFloat64(h.m.processed))
	require.Len(t, h.got, 1)
	require.Empty(t, h.marker.saved, "a group the sink failed on must be read again after the restart")
}

func TestConsumerGoesOnWhenTheDeadLetterQueueFails(t *testing.T) {
	h := newHarness()
	h.deadErr = errors.New("dlq down")

	err := h.c.handle(context.Background(), gocql.TimeUUID(), []row{eventRow(aggA, 1).with("sequence_number", "x"), eventRow(aggA, 2)})

	require.NoError(t, err)
	require.Len(t, h.got, 1)
	require.Equal(t, float64(1), testutil.ToFloat64(h.m.deadLettered))
	require.Equal(t, float64(1), testutil.ToFloat64(h.m.deadLetterFailures))
}

func TestDeadLetterCarriesTheRawRow(t *testing.T) {
	h := newHarness()
	cdcTime := gocql.TimeUUID()

	require.NoError(t, h.c.handle(context.Background(), cdcTime, []row{eventRow(aggA, 9).with("aggregate_id", "not-a-uuid")}))

	require.Len(t, h.dead, 1)
	raw := h.dead[0].raw
	require.ErrorContains(t, h.dead[0].err, "aggregate_id")
	require.Equal(t, "not-a-uuid", raw["aggregate_id"])
	require.Equal(t, int64(9), raw["sequence_number"], "pointers are dereferenced")
	require.Nil(t, raw["current_sequence"], "null columns are nil")
	require.Equal(t, "OrderCreated", raw["event_type"])
	require.Equal(t, "abcd", raw["cdc$stream_id"])
	require.Equal(t, cdcTime.String(), raw["cdc$time"])
	require.Equal(t, int8(scyllacdc.Insert), raw["cdc$operation"])
}

func TestConsumeReadsEveryKindOfRowOfALibraryChange(t *testing.T) {
	// The library's ChangeRow cannot be filled outside it, but an empty
	// Change shows that Consume moves the position like handle does.
	h := newHarness()
	h.clock.t = h.clock.t.Add(time.Second)
	at := gocql.TimeUUID()

	require.NoError(t, h.c.Consume(context.Background(), scyllacdc.Change{Time: at}))

	require.Equal(t, []gocql.UUID{at}, h.marker.saved)
}

func TestProgressIsSavedAtMostEveryInterval(t *testing.T) {
	ctx := context.Background()
	h := newHarness()
	start := h.clock.t
	t1 := gocql.MinTimeUUID(start.Add(-3 * time.Second))
	t2 := gocql.MinTimeUUID(start.Add(-2 * time.Second))
	t3 := gocql.MinTimeUUID(start.Add(-1 * time.Second))

	// Within the first interval nothing is written.
	require.NoError(t, h.c.handle(ctx, t1, []row{eventRow(aggA, 1)}))
	require.Empty(t, h.marker.saved)

	// Once the interval has passed, the next change saves its position.
	h.clock.t = start.Add(time.Second)
	require.NoError(t, h.c.handle(ctx, t2, []row{eventRow(aggA, 2)}))
	require.Equal(t, []gocql.UUID{t2}, h.marker.saved)

	// Never backwards.
	h.clock.t = start.Add(5 * time.Second)
	require.NoError(t, h.c.handle(ctx, t1, nil))
	require.Equal(t, []gocql.UUID{t2}, h.marker.saved)

	// Empty windows alone are saved only every idleProgressEvery.
	require.NoError(t, h.c.Empty(ctx, t3))
	require.Equal(t, []gocql.UUID{t2}, h.marker.saved)
	h.clock.t = start.Add(time.Second + idleProgressEvery)
	idle := gocql.MinTimeUUID(h.clock.t.Add(-time.Second))
	require.NoError(t, h.c.Empty(ctx, idle))
	require.Equal(t, []gocql.UUID{t2, idle}, h.marker.saved)

	// End saves what is pending, at once.
	h.clock.t = h.clock.t.Add(time.Millisecond)
	last := gocql.MinTimeUUID(h.clock.t)
	require.NoError(t, h.c.handle(ctx, last, []row{eventRow(aggA, 3)}))
	require.Len(t, h.marker.saved, 2)
	require.NoError(t, h.c.End())
	require.Equal(t, []gocql.UUID{t2, idle, last}, h.marker.saved)

	// Nothing pending: End writes nothing more.
	require.NoError(t, h.c.End())
	require.Len(t, h.marker.saved, 3)
}

func TestFailedProgressSaveIsRetriedAndNeverStopsTheConsumer(t *testing.T) {
	ctx := context.Background()
	h := newHarness()
	h.marker.err = errors.New("database down")
	h.clock.t = h.clock.t.Add(time.Second)
	at := gocql.TimeUUID()

	require.NoError(t, h.c.handle(ctx, at, []row{eventRow(aggA, 1)}))
	require.Len(t, h.progErrs, 1)
	require.NoError(t, h.c.End())
	require.Len(t, h.progErrs, 2)

	h.marker.err = nil
	require.NoError(t, h.c.End())
	require.Equal(t, []gocql.UUID{at}, h.marker.saved)
}

func TestSinkFailingOnAStoppingReaderIsNoOutage(t *testing.T) {
	h := newHarness()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.sinkErr = func(Change) error { return ctx.Err() }

	err := h.c.handle(ctx, gocql.TimeUUID(), []row{eventRow(aggA, 1)})

	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, h.outages)
}

// classify decodes rows from outside: whatever the row holds, it must not
// panic, and it must say exactly one thing about the row.
func FuzzClassify(f *testing.F) {
	f.Add(int8(scyllacdc.Insert), uint8(0), uint8(0), int64(1), true)
	f.Add(int8(scyllacdc.Update), uint8(1), uint8(2), int64(-5), false)
	f.Add(int8(99), uint8(3), uint8(4), int64(0), true)
	f.Fuzz(func(t *testing.T, op int8, idKind, seqKind uint8, seq int64, withEvent bool) {
		values := []any{nil, (*gocql.UUID)(nil), ptr(aggA), aggA, "text", ptr(seq), seq, (*int64)(nil), ptr(int32(seq)), []byte{1}}
		r := logRow(scyllacdc.OperationType(op), aggA)
		r = r.with("aggregate_id", values[int(idKind)%len(values)])
		r = r.with("sequence_number", values[int(seqKind)%len(values)])
		if withEvent {
			r = r.with("event_type", ptr("OrderCreated"))
		}

		ev, reason, err := classify(r)

		switch {
		case err != nil:
			require.Empty(t, reason)
			require.Equal(t, Change{}, ev)
		case reason != "":
			require.Contains(t, ignoreReasons, reason)
			require.Equal(t, Change{}, ev)
		default:
			require.Contains(t, []scyllacdc.OperationType{scyllacdc.Insert, scyllacdc.Update}, scyllacdc.OperationType(op))
			require.Equal(t, aggA, ev.AggregateID)
		}
	})
}
