package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"github.com/orderstream/orderstream/pkg/domain/customer"
	"github.com/orderstream/orderstream/pkg/domain/order"
	"github.com/orderstream/orderstream/pkg/eventcodec"
	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/personal"
)

// snapshotPath is the field path a sealed snapshot is bound to: a snapshot
// is sealed whole, as one value, under its owner's key.
const snapshotPath = "snapshot"

// Sealing is a RepositoryStore that keeps personal data out of the event
// store (issue 20, docs/personal-data.md): it seals the personal fields of
// every event before it is appended and every snapshot before it is saved,
// and opens them after they are read, so that the repositories above it
// and the domain see clear values while event_store and snapshots hold
// only sealed text.
//
// The owner of an event's personal data is a customer: the aggregate
// itself for customer events, the order's customer (named by its
// OrderCreated) for order events. A forgotten customer's values read
// personal.Redacted; their customer events can no longer be appended
// (personal.ErrForgotten, which Decide's customer.forgotten refusal
// normally comes before), while a personal value of their order that
// arrives after the forget (a delivery signature) is stored redacted, so
// that the order's lifecycle goes on. Their snapshots are neither read nor
// written: their aggregates load from the events.
//
// Events stored before personal data was switched on are clear and are
// read as they are; events of an older layout than the current one
// (upcast later by the repository) are always such, and are passed
// through unopened.
type Sealing struct {
	eventstore.RepositoryStore
	keys      *personal.Keyring
	upcasters *eventstore.Upcasters
	owners    *lru.Cache[gocql.UUID, string] // order id → customer id
	logger    zerolog.Logger
}

// NewSealing wraps store. ownerCache bounds how many orders' customer ids
// are remembered (each costs a read of the order's first event once).
func NewSealing(store eventstore.RepositoryStore, keys *personal.Keyring, up *eventstore.Upcasters, ownerCache int, logger zerolog.Logger) (*Sealing, error) {
	owners, err := lru.New[gocql.UUID, string](ownerCache)
	if err != nil {
		return nil, fmt.Errorf("repository: order owner cache: %w", err)
	}
	return &Sealing{RepositoryStore: store, keys: keys, upcasters: up, owners: owners,
		logger: logger.With().Str("component", "sealing").Logger()}, nil
}

// Append seals the events' personal fields, then appends them.
func (s *Sealing) Append(ctx context.Context, aggregateType string, id gocql.UUID, expected int64, events []eventstore.Event) (int64, error) {
	sealed := make([]eventstore.Event, len(events))
	for i, e := range events {
		if aggregateType == order.AggregateType && e.Type == order.EventOrderCreated {
			if owner, err := eventcodec.OrderCustomerID(e.Data); err == nil && owner != "" {
				s.owners.Add(id, owner)
			}
		}
		sealed[i] = e
		if !eventcodec.HasPersonalFields(aggregateType, e.Type) {
			continue
		}
		owner, err := s.owner(ctx, aggregateType, id)
		if err != nil {
			return 0, err
		}
		data, err := eventcodec.SealData(ctx, s.keys, aggregateType, e.Type, e.Data, owner, id.String())
		if errors.Is(err, personal.ErrForgotten) && aggregateType == order.AggregateType {
			// The order goes on without its customer's personal data.
			data, err = eventcodec.RedactData(aggregateType, e.Type, e.Data)
		}
		if err != nil {
			return 0, fmt.Errorf("sealing event %d of %s: %w", i, id, err)
		}
		sealed[i].Data = data
	}
	next, err := s.RepositoryStore.Append(ctx, aggregateType, id, expected, sealed)
	// The store fills in what it assigns (sequence, aggregate id and
	// type) in the events it was given: hand that on to the caller's
	// events, which keep their clear data.
	for i := range events {
		data := events[i].Data
		events[i] = sealed[i]
		events[i].Data = data
	}
	return next, err
}

// Events opens the personal fields of each event read.
func (s *Sealing) Events(ctx context.Context, id gocql.UUID, after, upTo int64, fn func(eventstore.Event) error) error {
	return s.RepositoryStore.Events(ctx, id, after, upTo, func(e eventstore.Event) error {
		if e.AggregateType == order.AggregateType && e.Type == order.EventOrderCreated {
			if owner, err := eventcodec.OrderCustomerID(e.Data); err == nil && owner != "" {
				s.owners.Add(id, owner)
			}
		}
		if !eventcodec.HasPersonalFields(e.AggregateType, e.Type) || e.Version != s.upcasters.Current(e.Type) {
			return fn(e)
		}
		owner, err := s.owner(ctx, e.AggregateType, id)
		if err != nil {
			return err
		}
		data, _, err := eventcodec.OpenData(ctx, s.keys, e.AggregateType, e.Type, e.Data, owner, id.String())
		if err != nil {
			return fmt.Errorf("event %d of %s: %w", e.Sequence, id, err)
		}
		e.Data = data
		return fn(e)
	})
}

// SaveSnapshot seals the snapshot's state whole under its owner's key. Of
// a forgotten customer nothing is saved.
func (s *Sealing) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if !holdsPersonalData(snap.AggregateType) {
		return s.RepositoryStore.SaveSnapshot(ctx, snap)
	}
	owner, err := s.owner(ctx, snap.AggregateType, snap.AggregateID)
	if err != nil {
		return err
	}
	key, err := s.keys.KeyFor(ctx, owner)
	if errors.Is(err, personal.ErrForgotten) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sealing snapshot of %s: %w", snap.AggregateID, err)
	}
	snap.State = []byte(key.SealString(snap.AggregateID.String(), snapshotPath, string(snap.State)))
	return s.RepositoryStore.SaveSnapshot(ctx, snap)
}

// LatestSnapshot opens a sealed snapshot; a clear one (saved before
// personal data was switched on) is returned as it is. A snapshot of a
// forgotten customer, sealed or clear, counts as none: their aggregates
// load from the events, which read redacted. A sealed snapshot that does
// not open is returned sealed, so that the repository ignores it as
// undecodable (and logs it) and loads from the events.
func (s *Sealing) LatestSnapshot(ctx context.Context, id gocql.UUID, maxVersion int64) (eventstore.Snapshot, bool, error) {
	snap, ok, err := s.RepositoryStore.LatestSnapshot(ctx, id, maxVersion)
	if err != nil || !ok || !holdsPersonalData(snap.AggregateType) {
		return snap, ok, err
	}
	owner, err := s.owner(ctx, snap.AggregateType, id)
	if err != nil {
		return snap, false, err
	}
	key, err := s.keys.Lookup(ctx, owner)
	switch {
	case errors.Is(err, personal.ErrForgotten):
		return eventstore.Snapshot{}, false, nil
	case errors.Is(err, personal.ErrNoKey) && !personal.IsSealed(string(snap.State)):
		return snap, true, nil
	case err != nil && !errors.Is(err, personal.ErrNoKey):
		return snap, false, err
	case err != nil:
		s.logger.Warn().Err(err).Str("aggregate_id", id.String()).Msg("sealed snapshot of a customer without a data key")
		return snap, true, nil
	}
	if !personal.IsSealed(string(snap.State)) {
		return snap, true, nil
	}
	state, err := key.OpenString(id.String(), snapshotPath, string(snap.State))
	if err != nil {
		s.logger.Warn().Err(err).Str("aggregate_id", id.String()).Msg("sealed snapshot does not open")
		return snap, true, nil
	}
	snap.State = []byte(state)
	return snap, true, nil
}

// holdsPersonalData reports whether aggregates of the type may hold
// personal data: others pass through unchanged.
func holdsPersonalData(aggregateType string) bool {
	return aggregateType == customer.AggregateType || aggregateType == order.AggregateType
}

// owner returns the customer whose key seals the aggregate's personal
// data: a customer's own id, or the customer named by an order's
// OrderCreated (remembered, else read: the order's first event).
func (s *Sealing) owner(ctx context.Context, aggregateType string, id gocql.UUID) (string, error) {
	switch aggregateType {
	case customer.AggregateType:
		return id.String(), nil
	case order.AggregateType:
	default:
		return "", fmt.Errorf("repository: no owner of personal data for aggregate type %q", aggregateType)
	}
	if owner, ok := s.owners.Get(id); ok {
		return owner, nil
	}
	var owner string
	err := s.RepositoryStore.Events(ctx, id, 0, 1, func(e eventstore.Event) error {
		if e.Type != order.EventOrderCreated {
			return fmt.Errorf("order %s begins with %s, not %s", id, e.Type, order.EventOrderCreated)
		}
		var err error
		owner, err = eventcodec.OrderCustomerID(e.Data)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("finding the customer of order %s: %w", id, err)
	}
	if owner == "" {
		return "", fmt.Errorf("finding the customer of order %s: it has no %s", id, order.EventOrderCreated)
	}
	s.owners.Add(id, owner)
	return owner, nil
}
