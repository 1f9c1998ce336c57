package deadletter

import (
	"sync"
	"sync/atomic"

	"github.com/gocql/gocql"
)

// Set is a component's parked aggregates as it knows them: read on hot
// paths without a lock, replaced by a fresh read of parked_aggregates, and
// extended at once when the component parks one itself. The zero Set is
// empty and ready to use.
type Set struct {
	ids atomic.Pointer[map[gocql.UUID]bool]
	mu  sync.Mutex // serialises the copy-on-write updates
}

// Has reports whether id is parked.
func (s *Set) Has(id gocql.UUID) bool {
	ids := s.ids.Load()
	return ids != nil && (*ids)[id]
}

// Replace makes ids the whole set (as read by Parked).
func (s *Set) Replace(ids map[gocql.UUID]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids.Store(&ids)
}

// Add parks id and returns the size of the set.
func (s *Set) Add(id gocql.UUID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[gocql.UUID]bool{id: true}
	if old := s.ids.Load(); old != nil {
		for k := range *old {
			next[k] = true
		}
	}
	s.ids.Store(&next)
	return len(next)
}
