package cdcsource

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/gocql/gocql"
	"github.com/rs/zerolog"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
)

// Columns of event_store read from the log.
const (
	colAggregateID = "aggregate_id"
	colSequence    = "sequence_number"
)

// eventColumns are regular (per-event) columns: a row-level UPDATE that sets
// one of them wrote an event row; the static columns never appear here.
var eventColumns = []string{"event_id", "event_type", "event_data"}

// row is the part of a CDC log row the consumer reads. The library's
// *scyllacdc.ChangeRow satisfies it but cannot be built outside the
// library, so tests supply their own rows.
type row interface {
	GetOperation() scyllacdc.OperationType
	// GetValue returns a column's value as the library represents it
	// (a pointer for scalar types, nil when the column is null) and
	// whether the log has that column at all.
	GetValue(column string) (interface{}, bool)
	// GetRawMapData returns every column of the row, for dead letters.
	GetRawMapData() map[string]interface{}
}

var _ row = (*scyllacdc.ChangeRow)(nil)

// progressMarker saves one stream's position; *scyllacdc.ProgressReporter
// satisfies it.
type progressMarker interface {
	MarkProgress(ctx context.Context, p scyllacdc.Progress) error
}

var _ progressMarker = (*scyllacdc.ProgressReporter)(nil)

// endSaveTimeout bounds the last progress save when a consumer ends: End
// has no context, and during an outage the save must not hold up shutdown.
const endSaveTimeout = 5 * time.Second

// idleProgressEvery is how often a stream that only sees empty windows saves
// its position. Saving it at all keeps a restart from re-reading hours of
// empty log (the reader starts a group of streams at its slowest stream);
// saving it rarely keeps thousands of idle streams from writing every
// second.
const idleProgressEvery = time.Minute

// consumer handles the log rows of one CDC stream. The library calls it
// from one goroutine at a time, so it needs no locks; different streams
// have different consumers running concurrently.
type consumer struct {
	streamID scyllacdc.StreamID
	sink     Sink
	dead     DeadLetter
	m        *sourceMetrics
	log      zerolog.Logger
	progress *progressSaver
	// outage records the sink's error so that Run can return it: once a
	// consumer fails, the library cancels the others, and its Run may
	// report one of their errors instead.
	outage func(error)
}

var _ scyllacdc.ChangeOrEmptyNotificationConsumer = (*consumer)(nil)

// Consume hands the event rows of one group of log rows (one cdc$time of
// the stream) to the sink. It returns an error only when the sink does:
// that stops the library's reader, which is right for an outage and wrong
// for anything a restart would not cure.
func (c *consumer) Consume(ctx context.Context, ch scyllacdc.Change) error {
	rows := make([]row, 0, len(ch.PreImage)+len(ch.Delta)+len(ch.PostImage))
	for _, group := range [][]*scyllacdc.ChangeRow{ch.PreImage, ch.Delta, ch.PostImage} {
		for _, r := range group {
			rows = append(rows, r)
		}
	}
	return c.handle(ctx, ch.Time, rows)
}

// Empty is told that a query window held no rows for this stream's group,
// so the stream's position can move to ackTime.
func (c *consumer) Empty(ctx context.Context, ackTime gocql.UUID) error {
	c.progress.advance(ctx, ackTime, false)
	// Never an error: the library would count it as a failed query.
	return nil
}

// End saves the last position before the consumer goes away (end of a
// generation, or the reader stopping).
func (c *consumer) End() error {
	ctx, cancel := context.WithTimeout(context.Background(), endSaveTimeout)
	defer cancel()
	c.progress.flush(ctx)
	// Never an error: the library would stop with it, and a lost save only
	// means reading again what was read.
	return nil
}

// handle processes the rows of one cdc$time in log order (the order of the
// batch's statements) and then moves the stream's position past them. The
// position does not move when the sink fails, so a restart delivers the
// whole group again.
func (c *consumer) handle(ctx context.Context, cdcTime gocql.UUID, rows []row) error {
	at := cdcTime.Time().UTC()
	type key struct {
		id  gocql.UUID
		seq int64
	}
	seen := make(map[key]bool, len(rows))
	for _, r := range rows {
		ev, reason, err := classify(r)
		switch {
		case err != nil:
			c.deadLetter(ctx, cdcTime, r, err)
			continue
		case reason != "":
			c.m.ignored.WithLabelValues(reason).Inc()
			continue
		}
		k := key{ev.AggregateID, ev.Sequence}
		if seen[k] {
			// One event row logged as several rows (a write split by
			// the database) is still one event.
			c.m.ignored.WithLabelValues(reasonDuplicate).Inc()
			continue
		}
		seen[k] = true
		ev.Time = at
		if err := c.sink(ctx, ev); err != nil {
			err = fmt.Errorf("handing event %d of aggregate %s to the sink: %w", ev.Sequence, ev.AggregateID, err)
			if ctx.Err() == nil {
				// A sink failing because the reader is stopping (on
				// shutdown or another failure) reports no outage of
				// its own; the cause is what Run must return.
				c.outage(err)
			}
			return err
		}
		c.m.processed.Inc()
	}
	c.progress.advance(ctx, cdcTime, true)
	return nil
}

// classify says what a log row is: an event row (a Change without Time), a
// row to ignore (a reason), or a row that cannot be read (an error).
func classify(r row) (Change, string, error) {
	switch op := r.GetOperation(); op {
	case scyllacdc.PreImage:
		return Change{}, reasonPreImage, nil
	case scyllacdc.PostImage:
		return Change{}, reasonPostImage, nil
	case scyllacdc.RowDelete, scyllacdc.PartitionDelete,
		scyllacdc.RangeDeleteStartInclusive, scyllacdc.RangeDeleteStartExclusive,
		scyllacdc.RangeDeleteEndInclusive, scyllacdc.RangeDeleteEndExclusive:
		return Change{}, reasonDelete, nil
	case scyllacdc.Insert, scyllacdc.Update:
		id, null, err := readUUID(r, colAggregateID)
		if err == nil && null {
			err = fmt.Errorf("column %s is null", colAggregateID)
		}
		if err != nil {
			return Change{}, "", err
		}
		seq, null, err := readInt64(r, colSequence)
		if err != nil {
			return Change{}, "", err
		}
		if null {
			// The static row: current_sequence, published_sequence,
			// updated_at or aggregate_type changed, no event row.
			return Change{}, reasonStaticRow, nil
		}
		if op == scyllacdc.Update && !setsAny(r, eventColumns) {
			return Change{}, reasonUpdateWithoutEvent, nil
		}
		return Change{AggregateID: id, Sequence: seq}, "", nil
	default:
		// An operation this code does not know may be an event row in a
		// newer ScyllaDB; dropping it silently could lose one.
		return Change{}, "", fmt.Errorf("unknown CDC operation %d (%s)", int8(op), op)
	}
}

// readUUID reads a uuid column; null reports a null value.
func readUUID(r row, column string) (v gocql.UUID, null bool, err error) {
	raw, ok := r.GetValue(column)
	if !ok {
		return v, false, fmt.Errorf("column %s is missing from the log row", column)
	}
	switch x := raw.(type) {
	case nil:
		return v, true, nil
	case *gocql.UUID:
		if x == nil {
			return v, true, nil
		}
		return *x, false, nil
	case gocql.UUID:
		return x, false, nil
	default:
		return v, false, fmt.Errorf("column %s holds a %T, want a uuid", column, raw)
	}
}

// readInt64 reads a bigint column; null reports a null value.
func readInt64(r row, column string) (v int64, null bool, err error) {
	raw, ok := r.GetValue(column)
	if !ok {
		return 0, false, fmt.Errorf("column %s is missing from the log row", column)
	}
	switch x := raw.(type) {
	case nil:
		return 0, true, nil
	case *int64:
		if x == nil {
			return 0, true, nil
		}
		return *x, false, nil
	case int64:
		return x, false, nil
	default:
		return 0, false, fmt.Errorf("column %s holds a %T, want a bigint", column, raw)
	}
}

// setsAny reports whether the row writes a non-null value to one of the
// columns.
func setsAny(r row, columns []string) bool {
	for _, col := range columns {
		if v, ok := r.GetValue(col); ok && !isNull(v) {
			return true
		}
	}
	return false
}

func isNull(v interface{}) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// deadLetter records an unreadable row and goes on. A dead letter queue
// that cannot record it must not stop the source either (the next rows are
// fine), so the row is then kept in the log output.
func (c *consumer) deadLetter(ctx context.Context, cdcTime gocql.UUID, r row, cause error) {
	c.m.deadLettered.Inc()
	raw := rawRow(c.streamID, cdcTime, r)
	log := c.log.With().Str("cdc_time", cdcTime.String()).Int("cdc_operation", int(r.GetOperation())).Err(cause).Logger()
	if err := c.dead(ctx, raw, cause); err != nil {
		c.m.deadLetterFailures.Inc()
		log.Error().AnErr("dead_letter_error", err).Interface("row", raw).Msg("unreadable CDC log row skipped and not recorded in the dead letter queue")
		return
	}
	log.Warn().Msg("unreadable CDC log row sent to the dead letter queue")
}

// rawRow is a log row as plain values (pointers dereferenced) plus the
// log's own columns, which the library keeps outside the row's data.
func rawRow(streamID scyllacdc.StreamID, cdcTime gocql.UUID, r row) map[string]any {
	data := r.GetRawMapData()
	raw := make(map[string]any, len(data)+3)
	for k, v := range data {
		raw[k] = deref(v)
	}
	raw["cdc$stream_id"] = hex.EncodeToString(streamID)
	raw["cdc$time"] = cdcTime.String()
	raw["cdc$operation"] = int8(r.GetOperation())
	return raw
}

func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	if rv.IsNil() {
		return nil
	}
	return rv.Elem().Interface()
}

// progressSaver moves one stream's position forward and saves it, at most
// every `every` after a change and at most every `idleEvery` while only
// empty windows pass.
type progressSaver struct {
	mark      progressMarker
	every     time.Duration
	idleEvery time.Duration
	now       func() time.Time
	onError   func(error)

	pending     gocql.UUID
	dirty       bool // pending is not saved
	afterChange bool // pending covers a change, not only empty windows
	lastSave    time.Time
}

func newProgressSaver(mark progressMarker, every time.Duration, now func() time.Time, onError func(error)) *progressSaver {
	return &progressSaver{
		mark: mark, every: every, idleEvery: max(every, idleProgressEvery), now: now, onError: onError,
		// Counting from creation spreads the first saves of a new
		// generation's streams instead of writing them all at once.
		lastSave: now(),
	}
}

// advance moves the position to t (never backwards) and saves it when it
// is due. change tells whether t follows a change or only an empty window.
func (p *progressSaver) advance(ctx context.Context, t gocql.UUID, change bool) {
	if p.pending != (gocql.UUID{}) && scyllacdc.CompareTimeUUID(t, p.pending) <= 0 {
		return
	}
	p.pending, p.dirty = t, true
	p.afterChange = p.afterChange || change
	every := p.idleEvery
	if p.afterChange {
		every = p.every
	}
	if p.now().Sub(p.lastSave) >= every {
		p.flush(ctx)
	}
}

// flush saves the pending position. A failed save is reported and left
// pending for the next one; it is counted as an attempt so that a database
// outage is not hammered once per change.
func (p *progressSaver) flush(ctx context.Context) {
	if !p.dirty {
		return
	}
	p.lastSave = p.now()
	if err := p.mark.MarkProgress(ctx, scyllacdc.Progress{LastProcessedRecordTime: p.pending}); err != nil {
		if !errors.Is(err, context.Canceled) {
			p.onError(err)
		}
		return
	}
	p.dirty, p.afterChange = false, false
}
