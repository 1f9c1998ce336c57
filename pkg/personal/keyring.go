package personal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/metrics"
)

// Config sets where the key-encryption key comes from and how unwrapped
// data keys are cached.
type Config struct {
	KEKFile string `mapstructure:"kek_file" help:"file holding the 32-byte key-encryption key that wraps every customer's data key, raw or base64 (a mounted Kubernetes Secret)"`
	// CacheTTL bounds how long another process may still decrypt a
	// customer's fields after they were forgotten (docs/personal-data.md).
	CacheTTL  time.Duration `mapstructure:"cache_ttl" help:"how long an unwrapped data key stays cached; another process may read a forgotten customer's fields for this long"`
	CacheSize int           `mapstructure:"cache_size" help:"how many customers' unwrapped data keys are cached at most"`
	Timeout   time.Duration `mapstructure:"timeout" help:"deadline of one read or write of customer_keys, and of one wrap or unwrap"`
}

// DefaultConfig caches 10 000 keys for one minute. KEKFile has no default:
// a process that encrypts must be given one.
func DefaultConfig() Config {
	return Config{CacheTTL: time.Minute, CacheSize: 10_000, Timeout: 5 * time.Second}
}

// Validate checks every key.
func (c Config) Validate() error {
	var errs []error
	if c.KEKFile == "" {
		errs = append(errs, config.Errorf("kek_file", "must name the file of the key-encryption key"))
	}
	if c.CacheTTL <= 0 || c.CacheTTL > time.Hour {
		errs = append(errs, config.Errorf("cache_ttl", "must be positive and at most 1h (a forgotten customer stays readable elsewhere for that long), got %s", c.CacheTTL))
	}
	if c.CacheSize < 1 || c.CacheSize > 10_000_000 {
		errs = append(errs, config.Errorf("cache_size", "must be between 1 and 10000000, got %d", c.CacheSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, config.Errorf("timeout", "must be positive, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// maxLoads bounds how often a cache miss reads the store again because a
// Forget ran meanwhile.
const maxLoads = 3

// errLoadRaced is returned when Forget kept overtaking a load maxLoads
// times; the caller may retry.
var errLoadRaced = errors.New("personal: data key load kept racing with forgets; retry")

// entry is a cached outcome: a live key, or a forgotten customer (final,
// so it may be cached). A customer without a key is never cached. An
// entry is served until expires: the cache is golang-lru's size-bounded
// LRU with the expiry checked on read, rather than its expirable LRU,
// whose cleaning goroutine never stops.
type entry struct {
	key       *Key
	forgotten bool
	expires   time.Time
}

// Keyring hands out the customers' unwrapped data keys: it creates a key
// the first time a customer's fields are sealed, unwraps and caches keys,
// and forgets customers. It is safe for concurrent use.
//
// A key is never served by this Keyring once Forget has returned for its
// customer: Forget bumps a generation under the lock the cache is filled
// under, and a load that began before the bump reads the store again
// rather than cache (or return) what it read. Other processes serve a
// forgotten customer's cached key until it expires: Config.CacheTTL.
type Keyring struct {
	store   KeyStore
	wrapper KeyWrapper
	timeout time.Duration
	logger  zerolog.Logger
	now     func() time.Time

	mu    sync.Mutex // orders cache fills after a load against Forget
	gen   atomic.Uint64
	cache *lru.Cache[string, entry]
	ttl   time.Duration

	created, forgotten prometheus.Counter
	cacheHits          prometheus.Counter
	cacheMisses        prometheus.Counter
	decryptFailures    *prometheus.CounterVec
	fields             *prometheus.CounterVec
}

// NewKeyring builds a keyring on store and wrapper; reg may be nil.
func NewKeyring(cfg Config, store KeyStore, wrapper KeyWrapper, logger zerolog.Logger, reg prometheus.Registerer) (*Keyring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("personal: %w", err)
	}
	cache, err := lru.New[string, entry](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("personal: %w", err)
	}
	const sub = "personal"
	k := &Keyring{
		store: store, wrapper: wrapper, timeout: cfg.Timeout, now: time.Now,
		logger: logger.With().Str("component", "personal").Logger(),
		cache:  cache, ttl: cfg.CacheTTL,
		created: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "keys_created_total",
			Help: "Customer data keys this process created (a new customer's first sealed field)."}),
		forgotten: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "keys_forgotten_total",
			Help: "Customers this process forgot (their data key destroyed); a repeated forget is not counted."}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "key_cache_hits_total",
			Help: "Data key lookups answered from the cache of unwrapped keys (a live key or a forgotten customer)."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "key_cache_misses_total",
			Help: "Data key lookups that read customer_keys."}),
		decryptFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "decrypt_failures_total",
			Help: "Personal fields or data keys that could not be decrypted, by reason: malformed, auth (wrong key, moved or altered), no_key, unknown_kek, store. A forgotten customer's field is redacted, not a failure."}, []string{"reason"}),
		fields: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: sub, Name: "fields_total",
			Help: "Personal field values processed, by outcome: sealed, opened, plain (written before encryption, read as is), redacted (of a forgotten customer)."}, []string{"outcome"}),
	}
	for _, reason := range []string{"malformed", "auth", "no_key", "unknown_kek", "store"} {
		k.decryptFailures.WithLabelValues(reason)
	}
	for _, outcome := range []string{"sealed", "opened", "plain", "redacted"} {
		k.fields.WithLabelValues(outcome)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{k.created, k.forgotten, k.cacheHits, k.cacheMisses, k.decryptFailures, k.fields} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("personal: registering metrics: %w", err)
			}
		}
	}
	return k, nil
}

// KeyFor returns the customer's data key for sealing, creating it the
// first time: ErrForgotten for a forgotten customer.
func (k *Keyring) KeyFor(ctx context.Context, customerID string) (*Key, error) {
	return k.key(ctx, customerID, true)
}

// Lookup returns the customer's data key for opening: ErrForgotten for a
// forgotten customer, ErrNoKey for one who never had a key.
func (k *Keyring) Lookup(ctx context.Context, customerID string) (*Key, error) {
	return k.key(ctx, customerID, false)
}

func (k *Keyring) key(ctx context.Context, customerID string, create bool) (*Key, error) {
	customerID, err := canonicalID(customerID)
	if err != nil {
		return nil, err
	}
	if e, ok := k.cache.Get(customerID); ok && k.now().Before(e.expires) {
		k.cacheHits.Inc()
		return e.result()
	}
	k.cacheMisses.Inc()
	for range maxLoads {
		gen := k.gen.Load()
		e, err := k.load(ctx, customerID, create)
		if err != nil {
			return nil, err
		}
		k.mu.Lock()
		if k.gen.Load() == gen {
			e.expires = k.now().Add(k.ttl)
			k.cache.Add(customerID, e)
			k.mu.Unlock()
			return e.result()
		}
		// A Forget ran while loading: what was read may be the key it
		// destroyed. Read again.
		k.mu.Unlock()
	}
	return nil, errLoadRaced
}

// canonicalID spells a customer id as the store returns it (lower-case
// UUID), so that one customer has one cache entry and the associated data
// of their wrapped key does not depend on how a caller spelt the id.
func canonicalID(customerID string) (string, error) {
	id, err := uuid.Parse(customerID)
	if err != nil {
		return "", fmt.Errorf("personal: customer id %q is not a UUID", customerID)
	}
	return id.String(), nil
}

func (e entry) result() (*Key, error) {
	if e.forgotten {
		return nil, ErrForgotten
	}
	return e.key, nil
}

// load reads (and with create, creates) the customer's row and unwraps it.
func (k *Keyring) load(ctx context.Context, customerID string, create bool) (entry, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	r, err := k.store.Get(ctx, customerID)
	switch {
	case errors.Is(err, ErrNoKey) && create:
		r, err = k.create(ctx, customerID)
		if err != nil {
			return entry{}, err
		}
	case errors.Is(err, ErrNoKey):
		return entry{}, err
	case err != nil:
		return entry{}, err
	}
	if r.Forgotten() {
		return entry{forgotten: true}, nil
	}
	raw, err := k.wrapper.Unwrap(ctx, customerID, r.KEKID, r.WrappedKey)
	if err != nil {
		reason := "auth"
		if errors.Is(err, ErrUnknownKEK) {
			reason = "unknown_kek"
		}
		k.decryptFailures.WithLabelValues(reason).Inc()
		return entry{}, err
	}
	key, err := NewKey(raw)
	if err != nil {
		return entry{}, err
	}
	return entry{key: key}, nil
}

func (k *Keyring) create(ctx context.Context, customerID string) (Record, error) {
	wrapped, err := k.wrapper.Wrap(ctx, customerID, NewRandomKeyBytes())
	if err != nil {
		return Record{}, fmt.Errorf("wrapping a new data key of customer %s: %w", customerID, err)
	}
	r, created, err := k.store.Create(ctx, customerID, Record{WrappedKey: wrapped, KEKID: k.wrapper.KEKID(), CreatedAt: k.now()})
	if err != nil {
		return Record{}, err
	}
	if created {
		k.created.Inc()
		k.logger.Debug().Str("customer_id", customerID).Str("kek_id", r.KEKID).Msg("data key created")
	}
	return r, nil
}

// Forget destroys the customer's data key (one write to the store) and
// drops it from this keyring's cache. Once it returns, this keyring serves
// no key of the customer; other processes stop within their cache TTL.
// Forgetting a forgotten customer changes nothing and is no error.
func (k *Keyring) Forget(ctx context.Context, customerID string) error {
	customerID, err := canonicalID(customerID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	forgot, err := k.store.Forget(ctx, customerID, k.now())
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.gen.Add(1)
	k.cache.Add(customerID, entry{forgotten: true, expires: k.now().Add(k.ttl)})
	k.mu.Unlock()
	if forgot {
		k.forgotten.Inc()
		k.logger.Info().Str("customer_id", customerID).Msg("customer forgotten: data key destroyed")
	}
	return nil
}
