// Package lease elects one active worker per name with a row in
// relay_leases taken by LWT and kept alive by TTL: the holder renews it
// well within the TTL; a standby takes it when it expires, so a crashed
// holder is replaced within one TTL. A holder that cannot renew stops its
// work at once, before its lease can have expired, so that two holders
// never work at the same time.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// Config sets the lease's lifetime.
type Config struct {
	TTL time.Duration `mapstructure:"ttl" help:"how long a lease outlives its holder's last renewal; a standby takes over within it"`
	// RenewEvery must leave room for a few failed renewals within TTL.
	RenewEvery time.Duration `mapstructure:"renew_every" help:"how often the holder renews, and a standby tries to take the lease"`
}

// DefaultConfig takes over within 10 s of a holder's death.
func DefaultConfig() Config { return Config{TTL: 10 * time.Second, RenewEvery: 2 * time.Second} }

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if c.TTL < 2*time.Second {
		errs = append(errs, config.Errorf("ttl", "must be at least 2s (TTLs count whole seconds), got %s", c.TTL))
	}
	// A holder stops one renewal before the earliest expiry (TTL minus a
	// second); there must be room for at least one retry before that.
	if c.RenewEvery <= 0 || 2*c.RenewEvery+time.Second > c.TTL {
		errs = append(errs, config.Errorf("renew_every", "must be positive and at most (ttl - 1s) / 2 = %s, got %s", (c.TTL-time.Second)/2, c.RenewEvery))
	}
	return errors.Join(errs...)
}

// Lease is one contender for the lease called name.
type Lease struct {
	session *gocql.Session
	name    string
	owner   string
	cfg     Config
	logger  zerolog.Logger
	leader  atomic.Bool
	state   prometheus.Gauge
	// takeovers counts leases taken after another holder's (a standby
	// replacing a dead or departed holder); lost counts leases this
	// process gave up because it could not renew them.
	takeovers, lost prometheus.Counter
	// acquiredAt is when this contender last took the lease; only the
	// goroutine running Run reads and writes it.
	acquiredAt time.Time
}

// New builds a contender; owner identifies it in the lease row (a unique
// suffix is added so that two processes never share an identity).
func New(session *gocql.Session, name, owner string, cfg Config, logger zerolog.Logger, reg prometheus.Registerer) (*Lease, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	l := &Lease{
		session: session, name: name, owner: owner + "/" + uuid.NewString()[:8], cfg: cfg,
		logger: logger.With().Str("lease", name).Logger(),
		state: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metrics.Namespace, Name: "lease_leader",
			Help: "1 while this process holds the lease and does the work, 0 while it stands by.", ConstLabels: prometheus.Labels{"lease": name}}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "lease", Name: "takeovers_total",
			Help: "Times this process took the lease while standing by behind another holder (whose lease expired or was released).", ConstLabels: prometheus.Labels{"lease": name}}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "lease", Name: "lost_total",
			Help: "Times this process stopped its work because it could not renew the lease or found another owner.", ConstLabels: prometheus.Labels{"lease": name}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{l.state, l.takeovers, l.lost} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("lease: registering metrics: %w", err)
			}
		}
	}
	return l, nil
}

// Owner is this contender's identity in the lease row.
func (l *Lease) Owner() string { return l.owner }

// Leader reports whether this contender holds the lease now.
func (l *Lease) Leader() bool { return l.leader.Load() }

// Run stands by until it takes the lease, then runs work with a context
// that is cancelled the moment the lease cannot be renewed; it then stands
// by again. Run returns when ctx is done (releasing a held lease, so that a
// standby takes over at once) or when work fails.
func (l *Lease) Run(ctx context.Context, work func(context.Context) error) error {
	for {
		if err := l.waitForLease(ctx); err != nil {
			return nil //nolint:nilerr // ctx is done: a clean stop
		}
		err := l.lead(ctx, work)
		if ctx.Err() != nil {
			l.release()
			return nil
		}
		if err != nil {
			l.release()
			return err
		}
	}
}

func (l *Lease) waitForLease(ctx context.Context) error {
	var behind string // the other holder this contender last stood by behind
	for {
		ok, holder, err := l.acquire(ctx)
		switch {
		case err != nil:
			l.logger.Warn().Err(err).Msg("could not try the lease")
		case ok && behind != "":
			l.takeovers.Inc()
			l.logger.Warn().Str("owner", l.owner).Str("previous_owner", behind).Msg("lease taken over: the previous holder's lease expired or was released; this process is active")
			return nil
		case ok:
			l.logger.Info().Str("owner", l.owner).Msg("lease taken: this process is active")
			return nil
		default:
			if holder != "" && holder != l.owner {
				behind = holder
			}
			l.logger.Debug().Str("holder", holder).Msg("standing by")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(l.cfg.RenewEvery):
		}
	}
}

// lead runs work while renewing; a renewal that fails or finds another
// owner cancels work at once.
func (l *Lease) lead(ctx context.Context, work func(context.Context) error) error {
	workCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.leader.Store(true)
	l.state.Set(1)
	defer func() { l.leader.Store(false); l.state.Set(0) }()

	done := make(chan error, 1)
	go func() { done <- work(workCtx) }()
	// The lease may expire TTL after the start of the last renewal that
	// succeeded, up to a second sooner (TTLs count whole seconds); work
	// stops one renewal interval before the earliest such moment.
	lastRenewed := time.Now()
	safeFor := l.cfg.TTL - time.Second - l.cfg.RenewEvery
	ticker := time.NewTicker(l.cfg.RenewEvery)
	defer ticker.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			cancel()
			return <-done
		case <-ticker.C:
			started := time.Now()
			ok, err := l.renew(ctx)
			switch {
			case err == nil && ok:
				lastRenewed = started
				continue
			case err == nil:
				l.logger.Warn().Msg("lease lost to another process: stopping work")
			case time.Since(lastRenewed)+l.cfg.RenewEvery < safeFor:
				l.logger.Warn().Err(err).Msg("lease renewal failed; retrying")
				continue
			default:
				l.logger.Warn().Err(err).Msg("lease may expire before it can be renewed: stopping work")
			}
			l.lost.Inc()
			cancel()
			err = <-done
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return err
		}
	}
}

func (l *Lease) ttlSeconds() int { return int(l.cfg.TTL.Seconds()) }

func (l *Lease) acquire(ctx context.Context) (bool, string, error) {
	now := time.Now().UTC()
	existing := map[string]any{}
	applied, err := l.session.Query(`INSERT INTO relay_leases (source, owner, acquired_at, renewed_at) VALUES (?, ?, ?, ?) IF NOT EXISTS USING TTL ?`,
		l.name, l.owner, now, now, l.ttlSeconds()).WithContext(ctx).MapScanCAS(existing)
	if err != nil {
		return false, "", err
	}
	if applied {
		l.acquiredAt = now
	}
	holder, _ := existing["owner"].(string)
	return applied, holder, nil
}

// renew rewrites every cell of the row with the renewal's TTL (owner and
// acquired_at unchanged): a cell left out keeps the TTL it was written
// with and turns null when that runs out.
func (l *Lease) renew(ctx context.Context) (bool, error) {
	now := time.Now().UTC()
	rctx, cancel := context.WithTimeout(ctx, l.cfg.RenewEvery)
	defer cancel()
	return l.session.Query(`UPDATE relay_leases USING TTL ? SET owner = ?, acquired_at = ?, renewed_at = ? WHERE source = ? IF owner = ?`,
		l.ttlSeconds(), l.owner, l.acquiredAt, now, l.name, l.owner).WithContext(rctx).MapScanCAS(map[string]any{})
}

func (l *Lease) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.session.Query(`DELETE FROM relay_leases WHERE source = ? IF owner = ?`, l.name, l.owner).
		WithContext(ctx).MapScanCAS(map[string]any{}); err != nil {
		l.logger.Warn().Err(err).Msg("releasing the lease; it expires by TTL")
		return
	}
	l.logger.Info().Msg("lease released")
}
