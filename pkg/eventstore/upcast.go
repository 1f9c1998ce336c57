package eventstore

import (
	"fmt"
	"sync"
)

// Upcaster rewrites the payload of one event type from one layout version
// to the next.
type Upcaster func(data []byte) ([]byte, error)

// Upcasters is the registry every reader of events shares (the write side
// and the projectors), so that the domain only ever sees current layouts.
type Upcasters struct {
	mu      sync.RWMutex
	current map[string]int32
	steps   map[upcastKey]Upcaster
}

type upcastKey struct {
	eventType string
	from      int32
}

// NewUpcasters returns an empty registry.
func NewUpcasters() *Upcasters {
	return &Upcasters{current: map[string]int32{}, steps: map[upcastKey]Upcaster{}}
}

// SetCurrent declares the version writers use for eventType.
func (u *Upcasters) SetCurrent(eventType string, version int32) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.current[eventType] = version
}

// Current is the version writers use for eventType (1 when undeclared).
func (u *Upcasters) Current(eventType string) int32 {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if v, ok := u.current[eventType]; ok {
		return v
	}
	return 1
}

// Register adds the step from version from to from+1 of eventType.
func (u *Upcasters) Register(eventType string, from int32, step Upcaster) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.steps[upcastKey{eventType, from}] = step
}

// ErrUnknownVersion is returned for an event newer than this code knows,
// or older with no upcaster to bring it forward.
var ErrUnknownVersion = fmt.Errorf("unknown event version")

// Upcast brings e to the current version of its type, step by step.
func (u *Upcasters) Upcast(e Event) (Event, error) {
	current := u.Current(e.Type)
	if e.Version > current {
		return e, fmt.Errorf("%s version %d, this code reads up to %d: %w", e.Type, e.Version, current, ErrUnknownVersion)
	}
	for e.Version < current {
		u.mu.RLock()
		step, ok := u.steps[upcastKey{e.Type, e.Version}]
		u.mu.RUnlock()
		if !ok {
			return e, fmt.Errorf("%s version %d has no upcaster to %d: %w", e.Type, e.Version, e.Version+1, ErrUnknownVersion)
		}
		data, err := step(e.Data)
		if err != nil {
			return e, fmt.Errorf("upcasting %s %d of %s from version %d: %w", e.Type, e.Sequence, e.AggregateID, e.Version, err)
		}
		e.Data = data
		e.Version++
	}
	return e, nil
}
