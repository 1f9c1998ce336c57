package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// Memory is the in-memory twin of Store, for unit tests of what uses the
// dead-letter queue: the same methods and, by deadlettertest.Suite, the
// same behaviour. Claims expire by the wall clock as the Store's TTL does.
// The zero Memory is not ready; use NewMemory.
type Memory struct {
	mu       sync.Mutex
	entries  map[gocql.UUID]Entry
	parked   map[parkKey]ParkedAggregate
	requests map[parkKey]memRequest
	results  map[gocql.UUID]Result
}

type parkKey struct {
	component string
	aggregate gocql.UUID
}

type memRequest struct {
	Request
	claimUntil time.Time
}

// NewMemory returns an empty queue.
func NewMemory() *Memory {
	return &Memory{entries: map[gocql.UUID]Entry{}, parked: map[parkKey]ParkedAggregate{}, requests: map[parkKey]memRequest{}, results: map[gocql.UUID]Result{}}
}

// Get reads the dead letter id.
func (m *Memory) Get(_ context.Context, id gocql.UUID) (Entry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	return cloneEntry(e), ok, nil
}

func cloneEntry(e Entry) Entry {
	e.ErrorHistory = append([]string(nil), e.ErrorHistory...)
	return e
}

// Park is Store.Park.
func (m *Memory) Park(_ context.Context, component string, e eventstore.Event, cause error) (gocql.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UTC()
	id, found := gocql.UUID{}, false
	for _, x := range m.entries {
		if x.Component == component && x.AggregateID == e.AggregateID && x.Sequence == e.Sequence && e.AggregateID != (gocql.UUID{}) {
			id, found = x.ID, true
			break
		}
	}
	if found {
		m.refail(id, cause, now)
	} else {
		id = gocql.UUIDFromTime(now)
		m.entries[id] = Entry{
			ID: id, Component: component, AggregateID: e.AggregateID, AggregateType: e.AggregateType, Sequence: e.Sequence, EventID: e.EventID,
			EventType: e.Type, Payload: string(e.Data), Error: cause.Error(), ErrorHistory: []string{historyLine(now, cause.Error())},
			FailureCount: 1, ParksAggregate: true, FirstFailedAt: now, LastFailedAt: now, CreatedAt: now,
		}
	}
	m.parked[parkKey{component, e.AggregateID}] = ParkedAggregate{Component: component, AggregateID: e.AggregateID, AggregateType: e.AggregateType,
		Sequence: e.Sequence, DLQID: id, Reason: cause.Error(), ParkedAt: now}
	return id, nil
}

// Refail is Store.Refail.
func (m *Memory) Refail(_ context.Context, id gocql.UUID, cause error) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refail(id, cause, time.Now().UTC()), nil
}

func (m *Memory) refail(id gocql.UUID, cause error, now time.Time) bool {
	e, ok := m.entries[id]
	if !ok {
		return false
	}
	e.FailureCount++
	e.Error = cause.Error()
	e.ErrorHistory = appendHistory(append([]string(nil), e.ErrorHistory...), now, cause)
	e.LastFailedAt = now
	m.entries[id] = e
	return true
}

// Raw is Store.Raw.
func (m *Memory) Raw(_ context.Context, component string, raw any, cause error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UTC()
	id := gocql.UUIDFromTime(now)
	payload, _ := json.Marshal(raw)
	m.entries[id] = Entry{ID: id, Component: component, Payload: string(payload), Error: cause.Error(), ErrorHistory: []string{historyLine(now, cause.Error())},
		FailureCount: 1, FirstFailedAt: now, LastFailedAt: now, CreatedAt: now}
	return nil
}

// Delete is Store.Delete.
func (m *Memory) Delete(_ context.Context, e Summary) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, e.ID)
	return nil
}

// Resolve is Store.Resolve.
func (m *Memory) Resolve(_ context.Context, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, e.ID)
	delete(m.parked, parkKey{e.Component, e.AggregateID})
	return nil
}

// ReadParked is Store.ReadParked.
func (m *Memory) ReadParked(_ context.Context, component string, aggregateID gocql.UUID) (ParkedAggregate, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.parked[parkKey{component, aggregateID}]
	return p, ok, nil
}

// IsHead is Store.IsHead.
func (m *Memory) IsHead(ctx context.Context, e Entry) (bool, error) {
	return isHead(ctx, m, e)
}

// ParkedRows is Store.ParkedRows.
func (m *Memory) ParkedRows(_ context.Context, component string) (map[gocql.UUID]ParkedAggregate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[gocql.UUID]ParkedAggregate{}
	for k, p := range m.parked {
		if k.component == component {
			out[k.aggregate] = p
		}
	}
	return out, nil
}

// Parked is Store.Parked.
func (m *Memory) Parked(ctx context.Context, component string) (map[gocql.UUID]bool, error) {
	rows, _ := m.ParkedRows(ctx, component)
	out := map[gocql.UUID]bool{}
	for id := range rows {
		out[id] = true
	}
	return out, nil
}

// List is Store.List.
func (m *Memory) List(ctx context.Context, f Filter, after gocql.UUID, limit int) (ListPage, error) {
	return list(ctx, m, f, after, limit)
}

// Summaries is Store.Summaries.
func (m *Memory) Summaries(_ context.Context, f Filter, after gocql.UUID, n int) ([]Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Summary
	for _, e := range m.entries {
		s := e.Summary()
		switch {
		case !f.match(s):
		case after != (gocql.UUID{}) && CompareTimeUUID(s.ID, after) >= 0:
		case !f.Until.IsZero() && CompareTimeUUID(s.ID, gocql.MaxTimeUUID(f.Until)) > 0:
		case !f.Since.IsZero() && CompareTimeUUID(s.ID, gocql.MinTimeUUID(f.Since)) < 0:
		default:
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return CompareTimeUUID(out[i].ID, out[j].ID) > 0 })
	return out[:min(n, len(out))], nil
}

// Components is Store.Components.
func (m *Memory) Components(_ context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range m.entries {
		if !seen[e.Component] {
			seen[e.Component] = true
			out = append(out, e.Component)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadStats is Store.ReadStats.
func (m *Memory) ReadStats(_ context.Context) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := newStats()
	for _, e := range m.entries {
		st.add(e.Summary(), e.FirstFailedAt)
	}
	st.sortCounts()
	for k := range m.parked {
		st.Parked[k.component]++
	}
	for k := range m.requests {
		st.PendingRetries[k.component]++
	}
	return *st, nil
}

// Backfill is Store.Backfill: the twin has no query tables to fill.
func (m *Memory) Backfill(context.Context) (int, error) { return 0, nil }

// Submit is Store.Submit.
func (m *Memory) Submit(_ context.Context, r Request) (Request, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.RequestedAt.IsZero() {
		r.RequestedAt = time.Now().UTC()
	}
	if r.ID == (gocql.UUID{}) {
		r.ID = gocql.UUIDFromTime(r.RequestedAt)
	}
	k := parkKey{r.Component, r.AggregateID}
	if cur, ok := m.requests[k]; ok {
		return cur.visible(), false, nil
	}
	r.ClaimedBy = ""
	m.requests[k] = memRequest{Request: r}
	return r, true, nil
}

// visible is the request as read: a claim past its TTL is gone.
func (r memRequest) visible() Request {
	out := r.Request
	if !time.Now().Before(r.claimUntil) {
		out.ClaimedBy = ""
	}
	return out
}

// Pending is Store.Pending.
func (m *Memory) Pending(_ context.Context, component string) ([]Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Request
	for k, r := range m.requests {
		if k.component == component {
			out = append(out, r.visible())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AggregateID.String() < out[j].AggregateID.String() })
	return out, nil
}

// PendingFor is Store.PendingFor.
func (m *Memory) PendingFor(_ context.Context, component string, aggregateID gocql.UUID) (Request, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[parkKey{component, aggregateID}]
	if !ok {
		return Request{}, false, nil
	}
	return r.visible(), true, nil
}

// Claim is Store.Claim.
func (m *Memory) Claim(_ context.Context, req Request, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := parkKey{req.Component, req.AggregateID}
	cur, ok := m.requests[k]
	if !ok || cur.ID != req.ID || cur.visible().ClaimedBy != "" {
		return false, nil
	}
	cur.ClaimedBy, cur.claimUntil = owner, time.Now().Add(ttl)
	m.requests[k] = cur
	return true, nil
}

// Release is Store.Release.
func (m *Memory) Release(_ context.Context, req Request, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := parkKey{req.Component, req.AggregateID}
	if cur, ok := m.requests[k]; ok && cur.visible().ClaimedBy == owner {
		cur.ClaimedBy, cur.claimUntil = "", time.Time{}
		m.requests[k] = cur
	}
	return nil
}

// Finish is Store.Finish.
func (m *Memory) Finish(ctx context.Context, res Result) error {
	m.mu.Lock()
	res.Unparked = false // not stored
	m.results[res.RequestID] = res
	m.mu.Unlock()
	return m.DeleteRequest(ctx, Request{Component: res.Component, AggregateID: res.AggregateID, ID: res.RequestID})
}

// DeleteRequest is Store.DeleteRequest.
func (m *Memory) DeleteRequest(_ context.Context, req Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := parkKey{req.Component, req.AggregateID}
	if cur, ok := m.requests[k]; ok && cur.ID == req.ID {
		delete(m.requests, k)
	}
	return nil
}

// ReadResult is Store.ReadResult.
func (m *Memory) ReadResult(_ context.Context, id gocql.UUID) (Result, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[id]
	return r, ok, nil
}

// AwaitResult is Store.AwaitResult.
func (m *Memory) AwaitResult(ctx context.Context, id gocql.UUID, every time.Duration) (Result, bool, error) {
	return awaitResult(ctx, m, id, every)
}

// Settle is Store.Settle.
func (m *Memory) Settle(ctx context.Context, e Entry, o Outcome) (Result, error) {
	return settle(ctx, m, e, o)
}

// String describes the queue, for test failures.
func (m *Memory) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("deadletter.Memory{%d dead letters, %d parked, %d requests, %d results}", len(m.entries), len(m.parked), len(m.requests), len(m.results))
}
