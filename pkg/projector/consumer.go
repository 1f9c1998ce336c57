package projector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/record"
	"github.com/orderstream/orderstream/pkg/supervise"
)

// claimState is one claimed partition's progress.
type claimState struct {
	partition int32
	hwm       func() int64 // the partition's high water mark, as last fetched
	next      atomic.Int64 // offset of the next record to apply

	mu          sync.Mutex
	lastSeq     int64
	lastEventID gocql.UUID
	processed   int64 // since this claim started
	errs        int64
	lastErr     string
}

// lag is how many records of the partition are not applied yet.
func (c *claimState) lag() int64 {
	next := c.next.Load()
	hwm := c.hwm()
	if next < 0 { // starting from the oldest record, whose offset is not known yet
		return max(hwm, 0)
	}
	if hwm <= next {
		return 0
	}
	return hwm - next
}

// Run runs the projector's workers (Workers) together on a Kafka client of
// their own until ctx ends or one fails, for tests and tools that run a
// projector without a supervisor; a service runs them as supervised
// workers of their own on the client its readiness check pings (Wire).
func (p *Projector[S]) Run(ctx context.Context, brokers []string, sc *sarama.Config) error {
	record.ConsumerConfig(sc)
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		return fmt.Errorf("connecting to Kafka: %w", err)
	}
	defer func() { _ = client.Close() }()
	return supervise.RunAll(ctx, p.Workers(client)...)
}

// Workers are the projector's three workers: the consumer ("projector",
// Consume), the redrive worker ("redrive", RedriveWorker) and the rebuild
// worker ("rebuild", RebuildWorker).
func (p *Projector[S]) Workers(client sarama.Client) []supervise.Worker {
	return []supervise.Worker{
		{Name: "projector", Run: func(ctx context.Context) error { return p.Consume(ctx, OnClient(client)) }},
		p.RedriveWorker(),
		p.RebuildWorker(),
	}
}

// Consume consumes the view's topic as a member of the projector's
// consumer group, joined through join (OnClient on a client configured with
// record.ConsumerConfig; recordtest's in-memory group in tests), until ctx
// ends, applying each record to the generations of the view being written
// (Handle); a rebuild runs beside it (RebuildWorker). A failure that
// outlasts the retries ends it with an error; its supervisor restarts it,
// and the uncommitted records are delivered again (and skipped where
// already applied).
func (p *Projector[S]) Consume(ctx context.Context, join JoinGroup) error {
	group, err := join(p.cfg.Group)
	if err != nil {
		return fmt.Errorf("joining consumer group %s: %w", p.cfg.Group, err)
	}
	defer func() { _ = group.Close() }()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	h := &handler[S]{p: p, stop: stop}
	done := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := group.Consume(cctx, []string{p.Topic()}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var groupErr error
wait:
	for {
		select {
		case err := <-group.Errors():
			p.logger.Warn().Err(err).Msg("consumer group")
		case groupErr = <-done:
			stop()
			break wait
		}
	}
	p.joined.Store(false)
	if err := h.failure(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	if groupErr != nil && !errors.Is(groupErr, context.Canceled) {
		return fmt.Errorf("consuming %s: %w", p.Topic(), groupErr)
	}
	return nil
}

// handler is the sarama group handler of one consumption.
type handler[S any] struct {
	p    *Projector[S]
	stop context.CancelFunc
	mu   sync.Mutex
	err  error
}

func (h *handler[S]) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *handler[S]) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.mu.Unlock()
	h.stop()
}

func (h *handler[S]) Setup(sess sarama.ConsumerGroupSession) error {
	h.p.claimsMu.Lock()
	h.p.claims = map[int32]*claimState{}
	h.p.expectedClaims = 0
	for _, parts := range sess.Claims() {
		h.p.expectedClaims += len(parts)
	}
	h.p.claimsMu.Unlock()
	h.p.forget() // another member may have applied our aggregates meanwhile
	// Write by the current generations from the first record of the new
	// claims (a rebuild may have started or switched meanwhile).
	rctx, cancel := context.WithTimeout(sess.Context(), 5*time.Second)
	if err := h.p.refreshGenerations(rctx); err != nil {
		h.p.logger.Warn().Err(err).Msg("reading the view's generations at a new claim")
	}
	cancel()
	h.p.joined.Store(true)
	h.p.logger.Info().Interface("claims", sess.Claims()).Int32("generation", sess.GenerationID()).Msg("consuming")
	return nil
}

func (h *handler[S]) Cleanup(sarama.ConsumerGroupSession) error {
	h.p.claimsMu.Lock()
	claims := h.p.claims
	h.p.claims = map[int32]*claimState{}
	h.p.claimsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range claims {
		h.p.writeOffsets(ctx, c)
		h.p.m.lag.DeleteLabelValues(strconv.Itoa(int(c.partition)))
	}
	return nil
}

func (h *handler[S]) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	p := h.p
	c := &claimState{partition: claim.Partition(), hwm: claim.HighWaterMarkOffset}
	c.next.Store(claim.InitialOffset())
	if c.next.Load() < 0 { // OffsetOldest/Newest until the first record says where it is
		c.next.Store(-1)
	}
	p.claimsMu.Lock()
	p.claims[c.partition] = c
	p.claimsMu.Unlock()
	lagGauge := p.m.lag.WithLabelValues(strconv.Itoa(int(c.partition)))
	tick := time.NewTicker(p.cfg.OffsetsEvery)
	defer tick.Stop()
	ctx := sess.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			lagGauge.Set(float64(c.lag()))
			p.writeOffsets(ctx, c)
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			rec, err := decode(msg)
			if err != nil {
				// Not even placeable: nothing to park, nothing to fill.
				if derr := p.parking.Raw(ctx, map[string]any{"partition": msg.Partition, "offset": msg.Offset, "key": string(msg.Key)}, err); derr != nil {
					h.fail(derr)
					return nil
				}
			} else if err := p.handleRetrying(ctx, rec); err != nil {
				if ctx.Err() == nil {
					c.mu.Lock()
					c.errs++
					c.lastErr = err.Error()
					c.mu.Unlock()
					p.writeOffsets(context.Background(), c)
					h.fail(err)
				}
				return nil
			} else {
				c.mu.Lock()
				c.lastSeq, c.lastEventID = rec.Sequence, rec.Event.EventID
				c.processed++
				c.mu.Unlock()
			}
			c.next.Store(msg.Offset + 1)
			lagGauge.Set(float64(c.lag()))
			sess.MarkMessage(msg, "")
		}
	}
}

// writeOffsets records a partition's progress in projection_offsets (the
// Kafka offset itself is committed by the consumer group).
func (p *Projector[S]) writeOffsets(ctx context.Context, c *claimState) {
	c.mu.Lock()
	if c.processed == 0 && c.errs == 0 {
		c.mu.Unlock()
		return
	}
	seq, eventID, processed, errs, lastErr := c.lastSeq, c.lastEventID, c.processed, c.errs, c.lastErr
	c.processed, c.errs = 0, 0
	c.mu.Unlock()
	// Counters are added to what is stored: read, add, write. Only the
	// partition's one consumer writes its row.
	var storedProcessed, storedErrs *int64
	err := p.session.Query(`SELECT events_processed, errors_count FROM projection_offsets WHERE projection_name = ? AND partition_id = ?`, p.view.Name, int(c.partition)).
		WithContext(ctx).Scan(&storedProcessed, &storedErrs)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		p.restoreCounts(c, processed, errs)
		p.logger.Warn().Err(err).Int32("partition", c.partition).Msg("reading projection_offsets")
		return
	}
	if storedProcessed != nil {
		processed += *storedProcessed
	}
	if storedErrs != nil {
		errs += *storedErrs
	}
	var lastErrArg any
	if lastErr != "" {
		lastErrArg = lastErr
	}
	q := `UPDATE projection_offsets SET last_sequence = ?, last_event_id = ?, last_processed_at = ?, events_processed = ?, errors_count = ?`
	args := []any{seq, eventID, time.Now().UTC(), processed, errs}
	if lastErrArg != nil {
		q += `, last_error = ?`
		args = append(args, lastErrArg)
	}
	args = append(args, p.view.Name, int(c.partition))
	if err := p.session.Query(q+` WHERE projection_name = ? AND partition_id = ?`, args...).WithContext(ctx).Exec(); err != nil {
		p.restoreCounts(c, processed-valueOr(storedProcessed), errs-valueOr(storedErrs))
		p.logger.Warn().Err(err).Int32("partition", c.partition).Msg("writing projection_offsets")
	}
}

func (p *Projector[S]) restoreCounts(c *claimState, processed, errs int64) {
	c.mu.Lock()
	c.processed += processed
	c.errs += errs
	c.mu.Unlock()
}

func valueOr(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

// Lag is the number of records of the claimed partitions not yet applied;
// -1 while some claimed partition has not started yet.
func (p *Projector[S]) Lag() int64 {
	p.claimsMu.Lock()
	defer p.claimsMu.Unlock()
	if len(p.claims) < p.expectedClaims {
		return -1
	}
	var total int64
	for _, c := range p.claims {
		total += c.lag()
	}
	return total
}

// Ready reports whether the projector is consuming and caught up to within
// ReadyMaxLag records. A rebuild does not make it unready: the active
// generation stays current meanwhile.
func (p *Projector[S]) Ready(context.Context) error {
	if !p.joined.Load() {
		return errors.New("not consuming yet (joining the consumer group)")
	}
	lag := p.Lag()
	if lag < 0 {
		return errors.New("starting to consume the claimed partitions")
	}
	if lag > p.cfg.ReadyMaxLag {
		return fmt.Errorf("%d records behind (ready at %d or fewer)", lag, p.cfg.ReadyMaxLag)
	}
	return nil
}
