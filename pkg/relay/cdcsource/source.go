package cdcsource

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
)

// Change is one committed event row seen in the CDC log.
type Change struct {
	AggregateID gocql.UUID
	Sequence    int64
	Time        time.Time // the CDC log time of the write
}

// Sink receives every change; an error means an outage (the broker or
// database is down): the source stops and is restarted by its supervisor,
// resuming from saved progress, so the change is delivered again.
//
// The sink is called concurrently for changes of different CDC streams and
// must be safe for that; the changes of one aggregate come from one stream
// and are never handed over concurrently.
type Sink func(ctx context.Context, c Change) error

// Notify hands the relay's publisher an aggregate with new events; done,
// when not nil, is called once it was handled. It is the shape every
// source of the relay is run with (relay.Notify, scansource.Notify): Run
// notifies it of each change's aggregate, without waiting for the
// publishing.
type Notify = func(ctx context.Context, aggregateID gocql.UUID, done func()) error

// DeadLetter records a log row the source cannot read (never stops the
// source). raw holds the row's columns as plain values plus cdc$stream_id
// (hex), cdc$time and cdc$operation. An error is logged with the row.
type DeadLetter func(ctx context.Context, raw map[string]any, err error) error

// firstStartLookback is how far back a source that never ran starts to
// read. The CDC source only announces events; older unpublished ones are
// found by the relay's scan source, and reading further back here would
// delay live events while the reader catches up.
const firstStartLookback = time.Minute

// maxFailedQueryDelay caps the backoff after failed CDC queries (the
// library's default): a failing query means a cluster in trouble, which
// should not be polled every second by every group of streams.
const maxFailedQueryDelay = 30 * time.Second

// Source reads event_store's CDC log and hands every committed event row to
// the relay (Run) or a Sink (RunChanges). Build it with New and run it under
// a supervisor.
type Source struct {
	session  *gocql.Session
	table    string
	cfg      Config
	dead     DeadLetter
	logger   zerolog.Logger
	m        *sourceMetrics
	progress *progressTable
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,47}$`)

// New builds a source reading <keyspace>.event_store, keeping its progress
// in <keyspace>.relay_progress under sourceName, and registers its metrics
// on reg (nil disables them).
func New(session *gocql.Session, keyspace, sourceName string, cfg Config, dead DeadLetter, logger zerolog.Logger, reg prometheus.Registerer) (*Source, error) {
	switch {
	case session == nil:
		return nil, errors.New("cdcsource: nil session")
	case !identifier.MatchString(keyspace):
		// It is written into statement texts, so it must be an identifier.
		return nil, fmt.Errorf("cdcsource: keyspace %q is not a CQL identifier of letters, digits and _", keyspace)
	case strings.TrimSpace(sourceName) == "":
		return nil, errors.New("cdcsource: empty source name")
	case dead == nil:
		return nil, errors.New("cdcsource: nil dead letter function")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cdcsource: %w", err)
	}
	m := newMetrics()
	if reg != nil {
		if err := m.register(reg); err != nil {
			return nil, fmt.Errorf("cdcsource: registering metrics: %w", err)
		}
	}
	return &Source{
		session:  session,
		table:    keyspace + ".event_store",
		cfg:      cfg,
		dead:     dead,
		logger:   logger.With().Str("cdc_source", sourceName).Logger(),
		m:        m,
		progress: newProgressTable(session, keyspace, sourceName),
	}, nil
}

// Run runs scylla-cdc-go's reader over <keyspace>.event_store until ctx is
// done (it then returns nil) or an outage: the sink failing, or the reader
// failing on the database (progress, generations). Each Run starts a new
// reader from the saved progress, so a supervisor may call it again.
func (s *Source) Run(ctx context.Context, notify Notify) error {
	if notify == nil {
		return errors.New("cdcsource: nil notify")
	}
	return s.RunChanges(ctx, func(ctx context.Context, c Change) error { return notify(ctx, c.AggregateID, nil) })
}

// RunChanges is Run handing each change to sink.
func (s *Source) RunChanges(ctx context.Context, sink Sink) error {
	if sink == nil {
		return errors.New("cdcsource: nil sink")
	}
	out := &outage{}
	factory := &consumerFactory{src: s, sink: sink, outage: out.record}
	rc := readerConfig(s.cfg, s.session, s.table, factory, s.progress, libLogger{s.logger})
	reader, err := scyllacdc.NewReader(ctx, rc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cdcsource: starting the CDC reader of %s: %w", s.table, err)
	}
	s.logger.Info().Str("table", s.table).Dur("confidence_window", s.cfg.ConfidenceWindow).Msg("reading the CDC log")
	err = reader.Run(ctx)
	// Shutdown first: a sink interrupted by it fails too, but that is no
	// outage.
	if ctx.Err() != nil {
		return nil
	}
	if sinkErr := out.err(); sinkErr != nil {
		return fmt.Errorf("cdcsource: %w", sinkErr)
	}
	if err != nil {
		return fmt.Errorf("cdcsource: reading the CDC log of %s: %w", s.table, err)
	}
	// The reader ends by itself only when stopped, which nothing does.
	return fmt.Errorf("cdcsource: the CDC reader of %s stopped unexpectedly", s.table)
}

// readerConfig maps Config onto the library's options; every delay is set,
// because the library replaces each zero with a default made for batch
// consumers (30 s confidence window, 10 s and 30 s poll delays).
func readerConfig(cfg Config, session *gocql.Session, table string, factory scyllacdc.ChangeConsumerFactory, pm scyllacdc.ProgressManager, logger scyllacdc.Logger) *scyllacdc.ReaderConfig {
	return &scyllacdc.ReaderConfig{
		Session:    session,
		TableNames: []string{table},
		// A write acknowledged by a quorum is then seen by the read.
		Consistency:           gocql.LocalQuorum,
		ChangeConsumerFactory: factory,
		ProgressManager:       pm,
		Logger:                logger,
		Advanced: scyllacdc.AdvancedReaderConfig{
			ConfidenceWindowSize:    cfg.ConfidenceWindow,
			QueryTimeWindowSize:     cfg.QueryWindow,
			PostNonEmptyQueryDelay:  cfg.PollInterval,
			PostEmptyQueryDelay:     cfg.MaxPollInterval,
			PostFailedQueryDelay:    cfg.MaxPollInterval,
			MaxPostFailedQueryDelay: max(maxFailedQueryDelay, cfg.MaxPollInterval),
			ChangeAgeLimit:          firstStartLookback,
		},
	}
}

// consumerFactory builds one consumer per CDC stream and generation.
type consumerFactory struct {
	src    *Source
	sink   Sink
	outage func(error)
}

// CreateChangeConsumer never fails: the library only logs a failure and
// then calls the missing consumer.
func (f *consumerFactory) CreateChangeConsumer(_ context.Context, in scyllacdc.CreateChangeConsumerInput) (scyllacdc.ChangeConsumer, error) {
	s := f.src
	log := s.logger.With().Stringer("cdc_stream", in.StreamID).Logger()
	var mark progressMarker = noProgress{}
	if in.ProgressReporter != nil {
		mark = in.ProgressReporter
	}
	return &consumer{
		streamID: in.StreamID,
		sink:     f.sink,
		dead:     s.dead,
		m:        s.m,
		log:      log,
		outage:   f.outage,
		progress: newProgressSaver(mark, s.cfg.ProgressEvery, time.Now, func(err error) {
			s.m.progressFailures.Inc()
			log.Warn().Err(err).Msg("saving CDC progress failed; the next save retries")
		}),
	}, nil
}

type noProgress struct{}

func (noProgress) MarkProgress(context.Context, scyllacdc.Progress) error { return nil }

// outage keeps the first sink error of a Run.
type outage struct {
	mu    sync.Mutex
	first error
}

func (o *outage) record(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = err
	}
}

func (o *outage) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first
}

// libLogger passes the library's messages to zerolog. The library has no
// levels and logs every stream's progress at start, so its messages are
// debug output, except failures, which an operator must see.
type libLogger struct{ log zerolog.Logger }

func (l libLogger) Printf(format string, v ...interface{}) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	lower := strings.ToLower(msg)
	if strings.Contains(lower, "error") || strings.Contains(lower, "fail") || strings.Contains(lower, "can't keep up") {
		l.log.Warn().Str("component", "scylla-cdc-go").Msg(msg)
		return
	}
	l.log.Debug().Str("component", "scylla-cdc-go").Msg(msg)
}
