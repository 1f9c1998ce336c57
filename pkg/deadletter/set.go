package deadletter

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gocql/gocql"
)

// Set is a component's parked aggregates as it knows them: read on hot
// paths without a lock, reloaded from parked_aggregates, and changed at
// once when the component parks or unparks one itself. The zero Set is
// empty and ready to use.
type Set struct {
	ids atomic.Pointer[map[gocql.UUID]bool]
	mu  sync.Mutex // serialises the copy-on-write updates
	gen uint64     // counts the changes, under mu
}

// Has reports whether id is parked.
func (s *Set) Has(id gocql.UUID) bool {
	ids := s.ids.Load()
	return ids != nil && (*ids)[id]
}

// Len is the size of the set.
func (s *Set) Len() int {
	ids := s.ids.Load()
	if ids == nil {
		return 0
	}
	return len(*ids)
}

// Replace makes ids the whole set (as read by Parked).
func (s *Set) Replace(ids map[gocql.UUID]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.ids.Store(&ids)
}

// Reload replaces the set with what read returns (Parked, say) and returns
// the ids that left it. A read that overlapped a change (Add, Remove,
// another Reload) is dropped, since the change may be newer than what it
// read: an aggregate just unparked by the component must not come back
// from a read taken before its row was deleted. The next Reload catches up.
func (s *Set) Reload(ctx context.Context, read func(context.Context) (map[gocql.UUID]bool, error)) (removed []gocql.UUID, err error) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	ids, err := read(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return nil, nil
	}
	if old := s.ids.Load(); old != nil {
		for id := range *old {
			if !ids[id] {
				removed = append(removed, id)
			}
		}
	}
	s.gen++
	s.ids.Store(&ids)
	return removed, nil
}

// Add parks id and returns the size of the set.
func (s *Set) Add(id gocql.UUID) int {
	return s.update(func(m map[gocql.UUID]bool) { m[id] = true })
}

// Remove unparks id and returns the size of the set.
func (s *Set) Remove(id gocql.UUID) int {
	return s.update(func(m map[gocql.UUID]bool) { delete(m, id) })
}

func (s *Set) update(change func(map[gocql.UUID]bool)) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[gocql.UUID]bool{}
	if old := s.ids.Load(); old != nil {
		for k := range *old {
			next[k] = true
		}
	}
	change(next)
	s.gen++
	s.ids.Store(&next)
	return len(next)
}
