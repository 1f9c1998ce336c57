package httpload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Run drives the load until cfg.Commands commands have been sent or
// cfg.Duration has passed, whichever comes first, and reports what it saw.
// Commands under way at the stop are finished (with their retries and
// read). If ctx ends first, Run stops at once and returns the report so
// far with ctx's error; commands cut off that way are counted as
// cancelled, not as failures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httpload: %w", err)
	}
	cfg = cfg.withDefaults()
	transport := newTransport(cfg.Clients)
	defer transport.CloseIdleConnections()
	l := &load{cfg: cfg, http: &http.Client{Transport: transport}, runID: runID()}
	l.start = time.Now()
	if cfg.Duration > 0 {
		l.stopAt = l.start.Add(cfg.Duration)
	}

	stopProgress := l.progress()
	tallies := make([]*tally, cfg.Clients)
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		tallies[i] = newTally()
		wg.Go(func() { l.client(ctx, i, tallies[i]) })
	}
	wg.Wait()
	elapsed := time.Since(l.start)
	stopProgress()

	r := newReport(cfg.Clients, elapsed, tallies)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, nil
}

// runID tells this run's idempotency keys and correlation ids from every
// other run's: keys live 24 h on the server, and a seed is often reused.
func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// load is one run, shared by its clients.
type load struct {
	cfg    Config
	http   *http.Client
	runID  string
	start  time.Time
	stopAt time.Time // zero: no time limit
	issued atomic.Int64

	// Counters for the progress line.
	done, rejected, unexpected, retried, reads atomic.Int64
}

// ticket takes the next command's place in the run, or tells the client
// to stop.
func (l *load) ticket(ctx context.Context) bool {
	if ctx.Err() != nil || (!l.stopAt.IsZero() && !time.Now().Before(l.stopAt)) {
		return false
	}
	return l.cfg.Commands == 0 || l.issued.Add(1) <= int64(l.cfg.Commands)
}

// client runs one virtual client until the load stops.
func (l *load) client(ctx context.Context, id int, t *tally) {
	m := newModel(l.cfg.Seed, id)
	s := &sender{
		http: l.http, retries: l.cfg.Retries, backoff: l.cfg.Backoff, maxBackoff: l.cfg.MaxBackoff, timeout: l.cfg.Timeout,
		rng: mrand.New(mrand.NewPCG(l.cfg.Seed^0x9e3779b97f4a7c15, uint64(id))),
	}
	committed := 0
	for n := 1; l.ticket(ctx); n++ {
		invalid := l.cfg.InvalidEvery > 0 && n%l.cfg.InvalidEvery == 0
		st := m.next(invalid)
		key := fmt.Sprintf("httpload-%s-c%d-%d", l.runID, id, n)
		header := http.Header{}
		header.Set("Idempotency-Key", key)
		header.Set("X-Correlation-ID", key)
		header.Set("Accept", "application/json")
		if st.body != nil {
			header.Set("Content-Type", "application/json")
		}
		began := time.Now()
		a := s.do(ctx, st.method, l.cfg.CommandURL+st.path, st.body, header)
		answered := time.Now()
		if a.status == 0 && isCancelled(ctx, a.err) {
			t.cancelled++
			st.forget()
			return
		}
		l.done.Add(1)
		if a.attempts > 1 {
			t.retried++
			t.retries += a.attempts - 1
			l.retried.Add(1)
		}
		k := t.kind(st.kind)
		t.statuses[a.status]++
		if a.status != 0 {
			k.latencies = append(k.latencies, answered.Sub(began))
		}
		outcome, version := classify(st, a)
		switch outcome {
		case "":
			k.ok++
			st.apply(version)
			t.commits = append(t.commits, Commit{AggregateType: st.aggType, AggregateID: st.aggID, Version: version, IdempotencyKey: key, Kind: st.kind})
			committed++
			if l.cfg.ReadEvery > 0 && committed%l.cfg.ReadEvery == 0 {
				l.read(ctx, s, t, st, version, answered, key)
			}
		case outcomeRejected:
			k.rejected++
			t.rejected[fmt.Sprintf("%s → %d", st.kind[len(invalidPrefix):], a.status)]++
			l.rejected.Add(1)
		default:
			k.unexpected++
			t.unexpect(outcome, fmt.Sprintf("%s %s %s", st.kind, st.method, st.path), a)
			l.unexpected.Add(1)
			if st.expect == 0 {
				st.forget()
			}
		}
	}
}

// outcomeRejected is an invalid command refused as it should be.
const outcomeRejected = "rejected"

// Unexpected outcomes, as Report.Unexpected names them.
const (
	UnexpectedTransport   = "transport"      // no answer after the retries
	Unexpected5xx         = "5xx"            // a 5xx after the retries
	UnexpectedInProgress  = "in progress"    // 409 request-in-progress after the retries
	Unexpected4xx         = "unexpected 4xx" // a 4xx to a valid command, or another 4xx than an invalid one's
	UnexpectedAccepted    = "invalid accepted"
	UnexpectedBadAnswer   = "bad answer" // a 2xx without {id, version}
	UnexpectedReadTimeout = "read timeout"
	UnexpectedReadError   = "read error"
)

// classify names a command's outcome: "" for a valid command carried out
// (with the version it answered), outcomeRejected for an invalid command
// refused with the status it must be, else the unexpected outcome.
func classify(st step, a answer) (string, int64) {
	switch {
	case a.status == 0:
		return UnexpectedTransport, 0
	case a.status == http.StatusConflict && a.slug() == "request-in-progress":
		return UnexpectedInProgress, 0
	case a.status >= 500:
		return Unexpected5xx, 0
	case st.expect != 0 && a.status == st.expect:
		return outcomeRejected, 0
	case st.expect != 0 && a.status < 300:
		return UnexpectedAccepted, 0
	case a.status >= 300:
		return Unexpected4xx, 0
	}
	var acc accepted
	if err := json.Unmarshal(a.body, &acc); err != nil || acc.ID != st.aggID || acc.Version < 1 {
		return UnexpectedBadAnswer, 0
	}
	return "", acc.Version
}

// read waits until the query API shows the aggregate at version, and
// records how long after the command's answer it did. The query API holds
// each read up to its own bound (2 s) and then answers 409
// version-not-reached; the read is then sent again, up to ReadTimeout.
func (l *load) read(ctx context.Context, s *sender, t *tally, st step, version int64, committed time.Time, key string) {
	path := "/v1/orders/"
	if st.aggType == TypeCustomer {
		path = "/v1/customers/"
	}
	url := l.cfg.QueryURL + path + st.aggID + "?min_version=" + strconv.FormatInt(version, 10)
	header := http.Header{}
	header.Set("X-Correlation-ID", key+"-read")
	header.Set("Accept", "application/json")
	deadline := committed.Add(l.cfg.ReadTimeout)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	what := "read " + path + st.aggID + " min_version " + strconv.FormatInt(version, 10)
	for {
		a := s.do(rctx, http.MethodGet, url, nil, header)
		switch {
		case a.status == http.StatusOK:
			t.reads = append(t.reads, time.Since(committed))
			l.reads.Add(1)
			return
		case ctx.Err() != nil:
			return
		case rctx.Err() != nil || time.Now().After(deadline):
			t.unexpect(UnexpectedReadTimeout, what, a)
			l.unexpected.Add(1)
			return
		case a.status == http.StatusConflict && a.slug() == "version-not-reached":
			// The server waited its bound; ask again, after a pause in
			// case it answered at once.
			select {
			case <-rctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		default:
			t.unexpect(UnexpectedReadError, what, a)
			l.unexpected.Add(1)
			return
		}
	}
}

// progress prints a line every second until the returned stop is called.
func (l *load) progress() (stop func()) {
	if l.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastAt := int64(0), l.start
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				n := l.done.Load()
				fmt.Fprintf(l.cfg.Progress, "%5.0fs  %7d commands  %6.0f/s  rejected %d  retried %d  unexpected %d  reads %d\n",
					now.Sub(l.start).Seconds(), n, float64(n-last)/now.Sub(lastAt).Seconds(),
					l.rejected.Load(), l.retried.Load(), l.unexpected.Load(), l.reads.Load())
				last, lastAt = n, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
