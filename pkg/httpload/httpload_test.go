package httpload

import (
	"bytes"
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fastRetries keeps retry tests quick.
func fastRetries(c Config) Config {
	c.Backoff, c.MaxBackoff = time.Millisecond, 2*time.Millisecond
	return c
}

// The mix: every kind of valid command in sensible shares, every kind of
// invalid command refused as it must be, nothing unexpected; what the
// report says was committed is exactly what the server committed.
func TestMixAgainstFake(t *testing.T) {
	fk, srv := newFake(t, noFault)
	fk.readLag = true
	var progress bytes.Buffer
	r, err := Run(context.Background(), Config{
		CommandURL: srv.URL, QueryURL: srv.URL, Clients: 4, Commands: 3000,
		InvalidEvery: 10, ReadEvery: 5, Seed: 7, Progress: &progress,
	})
	require.NoError(t, err)
	var table bytes.Buffer
	r.Table(&table)
	t.Logf("\n%s", table.String())

	require.Equal(t, 3000, r.Commands)
	require.Zero(t, r.UnexpectedTotal(), "unexpected: %v %v", r.Unexpected, r.Samples)
	require.Empty(t, fk.missing)
	require.Zero(t, r.Retried)

	byKind := map[string]KindReport{}
	for _, k := range r.Kinds {
		byKind[k.Kind] = k
	}
	valid := r.Commands - countRejected(r)
	for _, k := range kindOrder {
		share := float64(byKind[k].OK) / float64(valid)
		require.Greater(t, share, 0.02, "share of %s", k)
		require.Less(t, share, 0.40, "share of %s", k)
	}
	for _, k := range invalidKinds {
		require.Positive(t, byKind[k.kind].Rejected, "%s never sent", k.kind)
		require.Zero(t, byKind[k.kind].OK)
	}
	// Every 10th command of each client, about 75 per client.
	require.InDelta(t, 300, countRejected(r), 4)

	commits := r.Committed()
	require.Len(t, commits, valid)
	require.Equal(t, fk.commits, len(commits), "each committed command committed once")
	keys := map[string]bool{}
	last := map[string]int64{}
	for _, c := range commits {
		require.False(t, keys[c.IdempotencyKey], "key %s used twice", c.IdempotencyKey)
		keys[c.IdempotencyKey] = true
		require.Equal(t, last[c.AggregateID]+1, c.Version, "versions of %s %s follow each other", c.AggregateType, c.AggregateID)
		last[c.AggregateID] = c.Version
	}
	for id, v := range last {
		if o, ok := fk.orders[id]; ok {
			require.Equal(t, o.version, v)
		} else {
			require.Equal(t, fk.customers[id], v)
		}
	}

	// Every 5th commit of each client is read back, through one 409 each.
	require.InDelta(t, valid/5, r.ReadLatency.Count, 4)
	require.Len(t, r.ReadSamples, r.ReadLatency.Count)
	require.True(t, slices.IsSorted(r.ReadSamples))
	require.Contains(t, progress.String(), "commands")
}

func countRejected(r *Report) int {
	n := 0
	for _, c := range r.Rejected {
		n += c
	}
	return n
}

// A request that fails in a way a retry can fix is sent again with the
// same Idempotency-Key, and the command is committed exactly once.
func TestRetriesWithTheSameKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault fault
	}{
		{"503 without a commit", fail503First},
		{"connection dropped after the commit", dropAfterFirst},
		{"409 request-in-progress", inProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fk, srv := newFake(t, tc.fault)
			r, err := Run(context.Background(), fastRetries(Config{
				CommandURL: srv.URL, QueryURL: srv.URL, Clients: 2, Commands: 200, InvalidEvery: 7, ReadEvery: 3, Seed: 1,
			}))
			require.NoError(t, err)
			require.Zero(t, r.UnexpectedTotal(), "unexpected: %v %v", r.Unexpected, r.Samples)
			require.Equal(t, 200, r.Commands)
			if tc.fault != dropAfterFirst {
				require.Equal(t, 200, r.Retried, "every command needed one retry")
				require.Equal(t, 200, r.Retries)
			} // else net/http's Transport itself resends most of them: a request with an Idempotency-Key whose reused connection broke
			require.Len(t, fk.attempts, 200, "one key per command")
			for key, n := range fk.attempts {
				require.Equal(t, 2, n, "key %s", key)
			}
			require.Equal(t, fk.commits, len(r.Committed()), "nothing committed twice")
			require.Positive(t, r.ReadLatency.Count)
		})
	}
}

// Retries are bounded: a server that keeps failing is an unexpected
// outcome per command, after Retries more attempts each.
func TestRetriesExhausted(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		fk, srv := newFake(t, always503)
		r, err := Run(context.Background(), fastRetries(Config{CommandURL: srv.URL, Clients: 1, Commands: 5, Retries: 3}))
		require.NoError(t, err)
		require.Equal(t, map[string]int{Unexpected5xx: 5}, r.Unexpected)
		require.Equal(t, 15, r.Retries)
		require.Equal(t, map[int]int{503: 5}, r.Statuses)
		for _, n := range fk.attempts {
			require.Equal(t, 4, n)
		}
		require.Empty(t, r.Committed())
		require.NotEmpty(t, r.Samples)
	})
	t.Run("transport", func(t *testing.T) {
		_, srv := newFake(t, noFault)
		srv.Close()
		r, err := Run(context.Background(), fastRetries(Config{CommandURL: srv.URL, Clients: 2, Commands: 4, Retries: 2}))
		require.NoError(t, err)
		require.Equal(t, map[string]int{UnexpectedTransport: 4}, r.Unexpected)
		require.Equal(t, map[int]int{0: 4}, r.Statuses)
		require.Equal(t, 8, r.Retries)
	})
}

func TestStopConditions(t *testing.T) {
	_, srv := newFake(t, noFault)
	for _, tc := range []struct {
		name     string
		commands int
		duration time.Duration
		// want is the exact number of commands, or 0 when the clock stops
		// the load.
		want int
	}{
		{"commands", 123, 0, 123},
		{"commands before duration", 50, time.Hour, 50},
		{"duration", 0, 300 * time.Millisecond, 0},
		{"duration before commands", 1 << 30, 300 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Run(context.Background(), Config{CommandURL: srv.URL, Clients: 3, Commands: tc.commands, Duration: tc.duration})
			require.NoError(t, err)
			require.Zero(t, r.UnexpectedTotal())
			if tc.want > 0 {
				require.Equal(t, tc.want, r.Commands)
				return
			}
			require.Positive(t, r.Commands)
			require.GreaterOrEqual(t, r.Elapsed, tc.duration)
			require.Less(t, r.Elapsed, tc.duration+5*time.Second)
		})
	}
	t.Run("context ends the load", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		r, err := Run(ctx, Config{CommandURL: srv.URL, Clients: 2, Duration: time.Hour})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotNil(t, r)
		require.Positive(t, r.Commands)
		require.Zero(t, r.UnexpectedTotal())
	})
}

func TestValidate(t *testing.T) {
	good := Config{CommandURL: "http://127.0.0.1:8081", QueryURL: "http://127.0.0.1:8082", Clients: 1, Commands: 1, ReadEvery: 3}
	require.NoError(t, good.Validate())
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		field string
	}{
		{"no command URL", func(c *Config) { c.CommandURL = "" }, "CommandURL"},
		{"not http", func(c *Config) { c.QueryURL = "ftp://x" }, "QueryURL"},
		{"no clients", func(c *Config) { c.Clients = 0 }, "Clients"},
		{"never stops", func(c *Config) { c.Commands, c.Duration = 0, 0 }, "Commands, Duration"},
		{"every command invalid", func(c *Config) { c.InvalidEvery = 1 }, "InvalidEvery"},
		{"reads without a query URL", func(c *Config) { c.QueryURL = "" }, "ReadEvery"},
		{"negative retries", func(c *Config) { c.Retries = -1 }, "Retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.tweak(&c)
			err := c.Validate()
			require.ErrorContains(t, err, tc.field)
			_, err = Run(context.Background(), c)
			require.ErrorContains(t, err, tc.field)
		})
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0: time.Millisecond, .5: 50 * time.Millisecond, .95: 95 * time.Millisecond, .99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		require.Equal(t, want, Percentile(s, q), "q %v", q)
	}
	require.Zero(t, Percentile(nil, .5))
	require.Equal(t, time.Second, Percentile([]time.Duration{time.Second}, .99))
}

// The table, for a report built by hand, against testdata/table.golden
// (go test -run TestTable -update rewrites it).
func TestTable(t *testing.T) {
	lat := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	t1 := newTally()
	t1.kinds[KindCreate] = &kindTally{ok: 3, latencies: lat(10, 12, 40)}
	t1.kinds[KindRegister] = &kindTally{ok: 2, latencies: lat(8, 9)}
	t1.kinds[KindConfirm] = &kindTally{ok: 1, unexpected: 1, latencies: lat(7)}
	t1.kinds[invalidPrefix+"ship-created"] = &kindTally{rejected: 2, latencies: lat(3, 4)}
	t1.statuses = map[int]int{201: 5, 200: 1, 409: 2, 0: 1}
	t1.rejected = map[string]int{"ship-created → 409": 2}
	t1.unexpect(UnexpectedTransport, "confirm POST /v1/orders/o1/confirm", answer{err: errString("connection refused")})
	t1.retried, t1.retries = 1, 20
	t1.reads = lat(30, 10, 20)
	r := newReport(2, 2*time.Second, []*tally{t1})

	var got bytes.Buffer
	r.Table(&got)
	golden := filepath.Join("testdata", "table.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), got.String())

	require.Equal(t, 9, r.Commands)
	require.InDelta(t, 4.5, r.CommandsPerSecond(), 1e-9)
	require.Equal(t, []string{KindRegister, KindCreate, KindConfirm, invalidPrefix + "ship-created"},
		slices.Collect(func(yield func(string) bool) {
			for _, k := range r.Kinds {
				if !yield(k.Kind) {
					return
				}
			}
		}))
	require.Equal(t, 20*time.Millisecond, r.ReadLatency.P50)
	require.Equal(t, 1, r.UnexpectedTotal())
	require.True(t, strings.Contains(got.String(), "transport"))
	require.ElementsMatch(t, []int{0, 200, 201, 409}, slices.Collect(maps.Keys(r.Statuses)))
}

type errString string

func (e errString) Error() string { return string(e) }

// Every step, valid or not, can be applied and forgotten: a run cancelled
// while an invalid command is in flight forgets that step.
func TestEveryStepCanBeForgotten(t *testing.T) {
	m := newModel(1, 0)
	for n := 1; n <= 500; n++ {
		st := m.next(n%3 == 0)
		require.NotNil(t, st.apply, "step %d (%s) has no apply", n, st.kind)
		require.NotNil(t, st.forget, "step %d (%s) has no forget", n, st.kind)
		if st.expect == 0 {
			st.apply(1)
		}
	}
}
