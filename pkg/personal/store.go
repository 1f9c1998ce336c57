package personal

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
)

// Record is a customer's row in customer_keys.
type Record struct {
	// WrappedKey is the data key wrapped by the KEK named KEKID; nil once
	// the customer is forgotten.
	WrappedKey []byte
	KEKID      string
	// CreatedAt is when the key was created (zero for a customer forgotten
	// before they had one); ForgottenAt is when the customer was forgotten,
	// zero while the key lives. Both have millisecond precision.
	CreatedAt   time.Time
	ForgottenAt time.Time
}

// Forgotten reports whether the customer was forgotten.
func (r Record) Forgotten() bool { return !r.ForgottenAt.IsZero() }

// KeyStore holds the wrapped data keys, one per customer. Customer ids are
// UUIDs. CQLStore is the real one, MemStore its in-memory twin; both pass
// keystoretest.Suite.
type KeyStore interface {
	// Create stores r as the customer's key unless the customer has a row
	// already (a key, or a forgotten mark); it returns the row stored
	// afterwards and whether it is r. Of concurrent Creates for one
	// customer exactly one stores its key, and all return that key.
	Create(ctx context.Context, customerID string, r Record) (stored Record, created bool, err error)
	// Get returns the customer's row, or ErrNoKey.
	Get(ctx context.Context, customerID string) (Record, error)
	// Forget destroys the customer's key in one write and marks the
	// customer forgotten at at (also a customer without a key, so that no
	// key is created for them afterwards). It reports whether this call
	// forgot the customer: false when they were forgotten already, in
	// which case the first ForgottenAt stays.
	Forget(ctx context.Context, customerID string, at time.Time) (bool, error)
}

func checkCustomerID(id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("personal: customer id %q is not a UUID", id)
	}
	return nil
}

// CQLStore is the KeyStore on customer_keys (schema v0006). Every write is
// an LWT, so that the writes of one customer are ordered by Paxos; reads
// use the session's consistency, which sees every write an LWT committed.
type CQLStore struct {
	session *gocql.Session
}

// NewCQLStore returns the store on session's keyspace.
func NewCQLStore(session *gocql.Session) *CQLStore { return &CQLStore{session: session} }

const (
	insertKey = `INSERT INTO customer_keys (customer_id, wrapped_key, kek_id, created_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`
	selectKey = `SELECT wrapped_key, kek_id, created_at, forgotten_at FROM customer_keys WHERE customer_id = ?`
	// On a customer without a row, forgotten_at = null holds, so the
	// UPDATE (an upsert) writes the forgotten mark: one statement both
	// forgets a key and bars a key for a customer who never had one.
	forgetKey = `UPDATE customer_keys SET wrapped_key = null, kek_id = null, forgotten_at = ? WHERE customer_id = ? IF forgotten_at = null`
)

// Create implements KeyStore.
func (s *CQLStore) Create(ctx context.Context, customerID string, r Record) (Record, bool, error) {
	id, err := gocql.ParseUUID(customerID)
	if err != nil {
		return Record{}, false, checkCustomerID(customerID)
	}
	r.CreatedAt = r.CreatedAt.UTC().Truncate(time.Millisecond)
	existing := map[string]any{}
	applied, err := s.session.Query(insertKey, id, r.WrappedKey, r.KEKID, r.CreatedAt).WithContext(ctx).MapScanCAS(existing)
	if err != nil {
		return Record{}, false, fmt.Errorf("creating the data key of customer %s: %w", customerID, err)
	}
	if applied {
		return r, true, nil
	}
	return recordFromMap(existing), false, nil
}

// Get implements KeyStore.
func (s *CQLStore) Get(ctx context.Context, customerID string) (Record, error) {
	id, err := gocql.ParseUUID(customerID)
	if err != nil {
		return Record{}, checkCustomerID(customerID)
	}
	var r Record
	err = s.session.Query(selectKey, id).WithContext(ctx).Scan(&r.WrappedKey, &r.KEKID, &r.CreatedAt, &r.ForgottenAt)
	switch {
	case err == gocql.ErrNotFound:
		return Record{}, ErrNoKey
	case err != nil:
		return Record{}, fmt.Errorf("reading the data key of customer %s: %w", customerID, err)
	}
	return normalize(r), nil
}

// Forget implements KeyStore.
func (s *CQLStore) Forget(ctx context.Context, customerID string, at time.Time) (bool, error) {
	id, err := gocql.ParseUUID(customerID)
	if err != nil {
		return false, checkCustomerID(customerID)
	}
	applied, err := s.session.Query(forgetKey, at.UTC().Truncate(time.Millisecond), id).WithContext(ctx).MapScanCAS(map[string]any{})
	if err != nil {
		return false, fmt.Errorf("forgetting the data key of customer %s: %w", customerID, err)
	}
	return applied, nil
}

func recordFromMap(m map[string]any) Record {
	var r Record
	if b, ok := m["wrapped_key"].([]byte); ok {
		r.WrappedKey = b
	}
	if s, ok := m["kek_id"].(string); ok {
		r.KEKID = s
	}
	if t, ok := m["created_at"].(time.Time); ok {
		r.CreatedAt = t
	}
	if t, ok := m["forgotten_at"].(time.Time); ok {
		r.ForgottenAt = t
	}
	return normalize(r)
}

// normalize makes the records of both stores compare equal: UTC, null
// timestamps as the zero time, a null blob as nil.
func normalize(r Record) Record {
	if len(r.WrappedKey) == 0 {
		r.WrappedKey = nil
	}
	r.CreatedAt = utcOrZero(r.CreatedAt)
	r.ForgottenAt = utcOrZero(r.ForgottenAt)
	return r
}

// utcOrZero maps gocql's null timestamp (the Unix epoch's zero, or the
// zero time) to the zero time.
func utcOrZero(t time.Time) time.Time {
	if t.IsZero() || t.UnixMilli() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// MemStore is the in-memory twin of CQLStore, for unit tests.
type MemStore struct {
	mu   sync.Mutex
	rows map[string]Record
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rows: map[string]Record{}} }

// Create implements KeyStore.
func (s *MemStore) Create(ctx context.Context, customerID string, r Record) (Record, bool, error) {
	if err := s.check(ctx, customerID); err != nil {
		return Record{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.rows[customerID]; ok {
		return existing, false, nil
	}
	r = normalize(Record{WrappedKey: cloneBytes(r.WrappedKey), KEKID: r.KEKID, CreatedAt: r.CreatedAt.Truncate(time.Millisecond)})
	s.rows[customerID] = r
	return r, true, nil
}

// Get implements KeyStore.
func (s *MemStore) Get(ctx context.Context, customerID string) (Record, error) {
	if err := s.check(ctx, customerID); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[customerID]
	if !ok {
		return Record{}, ErrNoKey
	}
	r.WrappedKey = cloneBytes(r.WrappedKey)
	return r, nil
}

// Forget implements KeyStore.
func (s *MemStore) Forget(ctx context.Context, customerID string, at time.Time) (bool, error) {
	if err := s.check(ctx, customerID); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rows[customerID]
	if r.Forgotten() {
		return false, nil
	}
	s.rows[customerID] = normalize(Record{CreatedAt: r.CreatedAt, ForgottenAt: at.Truncate(time.Millisecond)})
	return true, nil
}

// Rows returns a copy of every row, by customer id, so that a test can
// check what a forget left behind.
func (s *MemStore) Rows() map[string]Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.rows)
}

func (s *MemStore) check(ctx context.Context, customerID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkCustomerID(customerID)
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
