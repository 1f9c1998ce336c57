package cdcsource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
)

const (
	// progressQueryTimeout bounds every query on relay_progress: the
	// library passes contexts without deadlines.
	progressQueryTimeout = 10 * time.Second

	// progressTTL expires per-stream rows. The CDC log keeps 24 h, so an
	// older position is worth no more than none (the reader starts at the
	// log's TTL bound anyway); the TTL clears the rows of past
	// generations, thousands of streams each.
	progressTTL = 7 * 24 * time.Hour

	// maxProgressQueries bounds concurrent queries on relay_progress; at
	// the start of a generation every group of streams loads its progress
	// at once.
	maxProgressQueries = 64
)

// startTimeGeneration is the generation of the row holding the time the
// source first started reading. No CDC generation starts at the epoch, and
// it sorts below every real generation, so it never reads as the current
// one.
var startTimeGeneration = time.UnixMilli(0).UTC()

// sourceRow is the stream_id of a source's own rows; real stream ids are
// 16 bytes. Non-nil: gocql sends a nil slice as null, which is no valid
// clustering value.
var sourceRow = []byte{}

// progressTable is scylla-cdc-go's ProgressManager on relay_progress, whose
// rows are keyed by source name, so that sources (and the standby replica
// that takes over a source's lease) share nothing but what they mean to.
// The library's own TableBackedProgressManager cannot be used: it creates
// and keys a table of its own layout.
//
// The table name argument of the interface is ignored: a source reads one
// table, event_store, and its name already identifies it.
//
// gocql prepares every statement that has bind markers on first use and
// reuses it by its text, so the fixed statement texts below run prepared.
type progressTable struct {
	session *gocql.Session
	source  string
	sem     chan struct{}
	now     func() time.Time

	selectCurrentGen string
	insertGen        string
	selectProgress   string
	insertProgress   string
	insertStartTime  string
}

var (
	_ scyllacdc.ProgressManager              = (*progressTable)(nil)
	_ scyllacdc.ProgressManagerWithStartTime = (*progressTable)(nil)
)

func newProgressTable(session *gocql.Session, keyspace, source string) *progressTable {
	table := keyspace + ".relay_progress"
	return &progressTable{
		session: session,
		source:  source,
		sem:     make(chan struct{}, maxProgressQueries),
		now:     time.Now,

		selectCurrentGen: `SELECT generation FROM ` + table + ` WHERE source = ? AND generation > ? ORDER BY generation DESC LIMIT 1`,
		insertGen:        `INSERT INTO ` + table + ` (source, generation, stream_id, updated_at) VALUES (?, ?, ?, ?)`,
		selectProgress:   `SELECT last_timestamp FROM ` + table + ` WHERE source = ? AND generation = ? AND stream_id = ?`,
		insertProgress:   `INSERT INTO ` + table + ` (source, generation, stream_id, last_timestamp, updated_at) VALUES (?, ?, ?, ?, ?) USING TTL ?`,
		insertStartTime:  `INSERT INTO ` + table + ` (source, generation, stream_id, last_timestamp, updated_at) VALUES (?, ?, ?, ?, ?)`,
	}
}

// GetCurrentGeneration returns the latest generation StartGeneration saved:
// the library starts every generation's streams only after saving it, so
// no row of a later generation can exist.
func (p *progressTable) GetCurrentGeneration(ctx context.Context) (time.Time, error) {
	var gen time.Time
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.selectCurrentGen, p.source, startTimeGeneration).
			WithContext(ctx).Idempotent(true).Scan(&gen)
	})
	if errors.Is(err, gocql.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the current CDC generation of %s: %w", p.source, err)
	}
	return gen, nil
}

// StartGeneration records that reading gen has begun. The marker row has no
// TTL: it must outlive a generation that stays current for weeks.
func (p *progressTable) StartGeneration(ctx context.Context, gen time.Time) error {
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.insertGen, p.source, gen, sourceRow, p.now()).
			WithContext(ctx).Idempotent(true).Exec()
	})
	if err != nil {
		return fmt.Errorf("recording CDC generation %s of %s: %w", gen, p.source, err)
	}
	return nil
}

// GetProgress returns the stream's last saved position in gen, zero when
// none was saved.
func (p *progressTable) GetProgress(ctx context.Context, gen time.Time, _ string, streamID scyllacdc.StreamID) (scyllacdc.Progress, error) {
	var last gocql.UUID
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.selectProgress, p.source, gen, []byte(streamID)).
			WithContext(ctx).Idempotent(true).Scan(&last)
	})
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return scyllacdc.Progress{}, fmt.Errorf("reading CDC progress of %s, stream %s: %w", p.source, streamID, err)
	}
	return scyllacdc.Progress{LastProcessedRecordTime: last}, nil
}

// SaveProgress saves the stream's position in gen.
func (p *progressTable) SaveProgress(ctx context.Context, gen time.Time, _ string, streamID scyllacdc.StreamID, progress scyllacdc.Progress) error {
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.insertProgress, p.source, gen, []byte(streamID), progress.LastProcessedRecordTime, p.now(), int(progressTTL.Seconds())).
			WithContext(ctx).Idempotent(true).Exec()
	})
	if err != nil {
		return fmt.Errorf("saving CDC progress of %s, stream %s: %w", p.source, streamID, err)
	}
	return nil
}

// GetApplicationReadStartTime returns when the source first started
// reading, zero if it never did. It keeps a restarted source that lost its
// generation row from reading further back than it ever did.
func (p *progressTable) GetApplicationReadStartTime(ctx context.Context) (time.Time, error) {
	var start gocql.UUID
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.selectProgress, p.source, startTimeGeneration, sourceRow).
			WithContext(ctx).Idempotent(true).Scan(&start)
	})
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return time.Time{}, fmt.Errorf("reading the CDC start time of %s: %w", p.source, err)
	}
	if start == (gocql.UUID{}) {
		// A zero UUID's Time() is in 1582, not the zero time the
		// library takes for "none".
		return time.Time{}, nil
	}
	return start.Time().UTC(), nil
}

// SaveApplicationReadStartTime records when the source first started
// reading.
func (p *progressTable) SaveApplicationReadStartTime(ctx context.Context, startTime time.Time) error {
	err := p.query(ctx, func(ctx context.Context) error {
		return p.session.Query(p.insertStartTime, p.source, startTimeGeneration, sourceRow, gocql.MinTimeUUID(startTime), p.now()).
			WithContext(ctx).Idempotent(true).Exec()
	})
	if err != nil {
		return fmt.Errorf("recording the CDC start time of %s: %w", p.source, err)
	}
	return nil
}

// query runs fn within the concurrency bound and the query deadline.
func (p *progressTable) query(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, progressQueryTimeout)
	defer cancel()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	return fn(ctx)
}
