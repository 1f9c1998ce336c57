package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/backoff"
	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/cql"
)

// Config controls the keyspace and the lock.
type Config struct {
	Replication string        `mapstructure:"replication" help:"replication map of the keyspace when it is created"`
	LockTTL     time.Duration `mapstructure:"lock_ttl" help:"how long a crashed migrator's lock outlives it"`
	LockWait    time.Duration `mapstructure:"lock_wait" help:"how long to wait for another migrator's lock"`
}

// DefaultConfig suits a single local node.
func DefaultConfig() Config {
	return Config{
		Replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}",
		LockTTL:     2 * time.Minute,
		LockWait:    5 * time.Minute,
	}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	r := strings.TrimSpace(c.Replication)
	if !strings.HasPrefix(r, "{") || !strings.HasSuffix(r, "}") || !strings.Contains(r, "'class'") {
		errs = append(errs, config.Errorf("replication", "want a CQL map with a 'class', got %q", c.Replication))
	}
	if c.LockTTL < 10*time.Second {
		errs = append(errs, config.Errorf("lock_ttl", "must be at least 10s, got %s", c.LockTTL))
	}
	if c.LockWait <= 0 {
		errs = append(errs, config.Errorf("lock_wait", "must be positive, got %s", c.LockWait))
	}
	return errors.Join(errs...)
}

// ErrChecksum is returned when an applied migration's files have changed.
var ErrChecksum = errors.New("applied migration was edited")

// Migrator applies migrations to one keyspace.
type Migrator struct {
	session  *gocql.Session
	keyspace string
	flavour  cql.Flavour
	cfg      Config
	logger   zerolog.Logger
	owner    string
}

// New returns a migrator; session must not be bound to the keyspace, which
// may not exist yet.
func New(session *gocql.Session, keyspace string, flavour cql.Flavour, cfg Config, logger zerolog.Logger) *Migrator {
	return &Migrator{session: session, keyspace: keyspace, flavour: flavour, cfg: cfg, logger: logger, owner: uuid.NewString()}
}

// Result says what a run did.
type Result struct {
	Applied []int // versions applied by this run
	Skipped []int // versions found already applied
}

// Apply creates the keyspace if needed, takes the lock, and applies each
// migration not yet recorded, in version order.
func (m *Migrator) Apply(ctx context.Context, migrations []Migration) (Result, error) {
	if err := m.bootstrap(ctx); err != nil {
		return Result{}, err
	}
	release, err := m.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()

	applied, err := m.applied(ctx)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, mig := range migrations {
		if sum, ok := applied[mig.Version]; ok {
			if sum != mig.Checksum {
				return res, fmt.Errorf("migration v%04d_%s: %w (recorded checksum %s, files now %s)", mig.Version, mig.Name, ErrChecksum, sum, mig.Checksum)
			}
			res.Skipped = append(res.Skipped, mig.Version)
			continue
		}
		log := m.logger.With().Int("version", mig.Version).Str("name", mig.Name).Logger()
		log.Info().Int("statements", len(mig.Statements)).Msg("applying migration")
		for i, stmt := range mig.Statements {
			if err := m.exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("migration v%04d_%s statement %d: %w", mig.Version, mig.Name, i+1, err)
			}
		}
		if err := m.session.Query(
			fmt.Sprintf(`INSERT INTO %s.schema_migrations (version, name, checksum, flavour, applied_at, applied_by) VALUES (?, ?, ?, ?, ?, ?)`, m.keyspace),
			mig.Version, mig.Name, mig.Checksum, string(m.flavour), time.Now().UTC(), m.owner,
		).WithContext(ctx).Consistency(gocql.Quorum).Exec(); err != nil {
			return res, fmt.Errorf("recording migration v%04d: %w", mig.Version, err)
		}
		res.Applied = append(res.Applied, mig.Version)
		log.Info().Msg("migration applied")
	}
	return res, nil
}

// bootstrap creates the keyspace and the migrator's own tables; every
// statement is idempotent, so concurrent migrators may all run it.
func (m *Migrator) bootstrap(ctx context.Context) error {
	ks := fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`, m.keyspace, m.cfg.Replication)
	if m.flavour == cql.ScyllaDB {
		// scylla-cdc-go reads vnode-based CDC, and LWT needs vnodes before
		// ScyllaDB 2025.4 (DESIGN.md, "Where it runs").
		ks += ` AND tablets = {'enabled': false}`
	}
	stmts := []string{
		ks,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations (
			version int PRIMARY KEY, name text, checksum text, flavour text, applied_at timestamp, applied_by text)`, m.keyspace),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_lock (
			name text PRIMARY KEY, owner text, acquired_at timestamp)`, m.keyspace),
	}
	for _, s := range stmts {
		if err := m.exec(ctx, s); err != nil {
			return fmt.Errorf("bootstrapping keyspace %s: %w", m.keyspace, err)
		}
	}
	return nil
}

// exec runs one DDL statement and waits for every node to agree on the
// schema, so the next statement sees this one's result.
//
// A statement that got no answer in time (a busy node) is sent again, up
// to three more times: schema statements are written IF NOT EXISTS, so a
// repeat of one that did apply changes nothing.
func (m *Migrator) exec(ctx context.Context, stmt string) error {
	var err error
	bo := backoff.Policy{Initial: 2 * time.Second, Max: 4 * time.Second}.Start()
	for attempt := range 4 {
		if attempt > 0 {
			if err := bo.Wait(ctx); err != nil {
				return err
			}
		}
		if err = m.session.Query(stmt).WithContext(ctx).Consistency(gocql.All).Exec(); !errors.Is(err, gocql.ErrTimeoutNoResponse) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w\n  in: %s", err, firstLine(stmt))
	}
	if err := m.session.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("waiting for schema agreement: %w", err)
	}
	return nil
}

// lock takes the migration lock by LWT, waiting with backoff while another
// migrator holds it. The TTL frees the lock of a migrator that crashed.
func (m *Migrator) lock(ctx context.Context) (release func(), err error) {
	deadline := time.Now().Add(m.cfg.LockWait)
	bo := backoff.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}.Start()
	for {
		holder := map[string]any{}
		applied, err := m.session.Query(
			fmt.Sprintf(`INSERT INTO %s.schema_lock (name, owner, acquired_at) VALUES ('migrate', ?, ?) IF NOT EXISTS USING TTL ?`, m.keyspace),
			m.owner, time.Now().UTC(), int(m.cfg.LockTTL.Seconds()),
		).WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(holder)
		if err != nil {
			return nil, fmt.Errorf("taking migration lock: %w", err)
		}
		if applied {
			m.logger.Debug().Str("owner", m.owner).Msg("migration lock taken")
			return m.unlock, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("migration lock held by %v since %v; gave up after %s", holder["owner"], holder["acquired_at"], m.cfg.LockWait)
		}
		m.logger.Info().Any("holder", holder["owner"]).Msg("waiting for another migrator")
		if err := bo.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

func (m *Migrator) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.session.Query(
		fmt.Sprintf(`DELETE FROM %s.schema_lock WHERE name = 'migrate' IF owner = ?`, m.keyspace), m.owner,
	).WithContext(ctx).SerialConsistency(gocql.Serial).MapScanCAS(map[string]any{}); err != nil {
		m.logger.Warn().Err(err).Msg("releasing migration lock; it expires by TTL")
	}
}

func (m *Migrator) applied(ctx context.Context) (map[int]string, error) {
	iter := m.session.Query(fmt.Sprintf(`SELECT version, checksum FROM %s.schema_migrations`, m.keyspace)).
		WithContext(ctx).Consistency(gocql.Quorum).PageSize(1000).Iter()
	out := map[int]string{}
	var (
		v   int
		sum string
	)
	for iter.Scan(&v, &sum) {
		out[v] = sum
	}
	if err := iter.Close(); err != nil {
		return nil, fmt.Errorf("reading applied migrations: %w", err)
	}
	return out, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
