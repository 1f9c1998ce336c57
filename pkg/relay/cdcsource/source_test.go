package cdcsource

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	scyllacdc "github.com/scylladb/scylla-cdc-go"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/config"
)

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		keys   []string
	}{
		{"zero confidence window", func(c *Config) { c.ConfidenceWindow = 0 }, []string{"confidence_window"}},
		{"confidence window beyond the log TTL", func(c *Config) { c.ConfidenceWindow = 25 * time.Hour }, []string{"confidence_window"}},
		{"negative query window", func(c *Config) { c.QueryWindow = -time.Second }, []string{"query_window"}},
		{"zero poll interval", func(c *Config) { c.PollInterval = 0 }, []string{"poll_interval"}},
		{"max poll below poll", func(c *Config) { c.MaxPollInterval = c.PollInterval / 2 }, []string{"max_poll_interval"}},
		{"zero progress interval", func(c *Config) { c.ProgressEvery = 0 }, []string{"progress_every"}},
		{"everything zero", func(c *Config) { *c = Config{} }, []string{"confidence_window", "query_window", "poll_interval", "max_poll_interval", "progress_every"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			require.ElementsMatch(t, tc.keys, fieldKeys(t, err))
		})
	}
}

// fieldKeys lists the keys of the FieldErrors joined in err.
func fieldKeys(t *testing.T, err error) []string {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "Validate joins its errors: %v", err)
	var keys []string
	for _, e := range joined.Unwrap() {
		var fe *config.FieldError
		require.ErrorAs(t, e, &fe)
		keys = append(keys, fe.Key)
	}
	return keys
}

func TestReaderConfigCarriesTheConfig(t *testing.T) {
	cfg := Config{
		ConfidenceWindow: 1500 * time.Millisecond,
		QueryWindow:      7 * time.Second,
		PollInterval:     50 * time.Millisecond,
		MaxPollInterval:  2 * time.Second,
		ProgressEvery:    3 * time.Second,
	}
	pm := newProgressTable(nil, "ks", "src")
	factory := &consumerFactory{}

	rc := readerConfig(cfg, nil, "ks.event_store", factory, pm, libLogger{zerolog.Nop()})

	require.Equal(t, []string{"ks.event_store"}, rc.TableNames)
	require.Equal(t, gocql.LocalQuorum, rc.Consistency)
	require.Same(t, factory, rc.ChangeConsumerFactory)
	require.Same(t, pm, rc.ProgressManager)
	a := rc.Advanced
	require.Equal(t, 1500*time.Millisecond, a.ConfidenceWindowSize)
	require.Equal(t, 7*time.Second, a.QueryTimeWindowSize)
	require.Equal(t, 50*time.Millisecond, a.PostNonEmptyQueryDelay)
	require.Equal(t, 2*time.Second, a.PostEmptyQueryDelay)
	require.Equal(t, 2*time.Second, a.PostFailedQueryDelay)
	require.Equal(t, maxFailedQueryDelay, a.MaxPostFailedQueryDelay)
	require.Equal(t, firstStartLookback, a.ChangeAgeLimit)
}

func TestReaderConfigLeavesNoLibraryDefaultForTheDefaults(t *testing.T) {
	// A zero would be replaced by the library's batch-oriented default.
	a := readerConfig(DefaultConfig(), nil, "ks.event_store", &consumerFactory{}, nil, nil).Advanced
	for name, d := range map[string]time.Duration{
		"ConfidenceWindowSize": a.ConfidenceWindowSize, "QueryTimeWindowSize": a.QueryTimeWindowSize,
		"PostNonEmptyQueryDelay": a.PostNonEmptyQueryDelay, "PostEmptyQueryDelay": a.PostEmptyQueryDelay,
		"PostFailedQueryDelay": a.PostFailedQueryDelay, "MaxPostFailedQueryDelay": a.MaxPostFailedQueryDelay,
		"ChangeAgeLimit": a.ChangeAgeLimit,
	} {
		require.Positive(t, d, name)
	}
	require.Equal(t, 2*time.Second, a.ConfidenceWindowSize)
}

func nopSink(context.Context, Change) error                { return nil }
func nopDead(context.Context, map[string]any, error) error { return nil }

func TestNewRegistersMetricsOnTheGivenRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(&gocql.Session{}, "orderstream", "scylla-cdc", DefaultConfig(), nopDead, zerolog.Nop(), reg)
	require.NoError(t, err)

	families, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	require.Subset(t, names, []string{
		"orderstream_cdc_events_processed_total",
		"orderstream_cdc_rows_ignored_total",
		"orderstream_cdc_rows_dead_lettered_total",
	})

	// A second source on the same registry fails and leaves it as it was.
	_, err = New(&gocql.Session{}, "orderstream", "scylla-cdc", DefaultConfig(), nopDead, zerolog.Nop(), reg)
	require.Error(t, err)
	after, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, after, len(families))
}

func TestNewRejectsBadArguments(t *testing.T) {
	session := &gocql.Session{}
	bad := DefaultConfig()
	bad.PollInterval = 0
	cases := []struct {
		name string
		new  func() (*Source, error)
		want string
	}{
		{"nil session", func() (*Source, error) {
			return New(nil, "ks", "s", DefaultConfig(), nopDead, zerolog.Nop(), nil)
		}, "session"},
		{"keyspace that is no identifier", func() (*Source, error) {
			return New(session, "ks; DROP TABLE x", "s", DefaultConfig(), nopDead, zerolog.Nop(), nil)
		}, "keyspace"},
		{"empty source name", func() (*Source, error) {
			return New(session, "ks", " ", DefaultConfig(), nopDead, zerolog.Nop(), nil)
		}, "source name"},
		{"nil dead letter", func() (*Source, error) {
			return New(session, "ks", "s", DefaultConfig(), nil, zerolog.Nop(), nil)
		}, "dead letter"},
		{"invalid config", func() (*Source, error) {
			return New(session, "ks", "s", bad, nopDead, zerolog.Nop(), nil)
		}, "poll_interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.new()
			require.Nil(t, s)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestFactoryBuildsConsumersThatReportOutages(t *testing.T) {
	down := errors.New("broker down")
	src, err := New(&gocql.Session{}, "ks", "s", DefaultConfig(), nopDead, zerolog.Nop(), nil)
	require.NoError(t, err)
	out := &outage{}
	f := &consumerFactory{src: src, sink: func(context.Context, Change) error { return down }, outage: out.record}

	cc, err := f.CreateChangeConsumer(context.Background(), scyllacdc.CreateChangeConsumerInput{TableName: "ks.event_store", StreamID: scyllacdc.StreamID{1}})
	require.NoError(t, err)
	c, ok := cc.(*consumer)
	require.True(t, ok)

	err = c.handle(context.Background(), gocql.TimeUUID(), []row{eventRow(aggA, 1)})
	require.ErrorIs(t, err, down)
	require.ErrorIs(t, out.err(), down)
	require.NoError(t, c.End(), "a consumer without a reporter ends cleanly")
}

func TestLibraryMessagesAreDebugUnlessTheyReportAFailure(t *testing.T) {
	var buf strings.Builder
	l := libLogger{zerolog.New(&buf).Level(zerolog.DebugLevel)}
	l.Printf("loaded progress for stream %s\n", "ab")
	l.Printf("error while sending a query (will retry): %s", "timeout")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], `"level":"debug"`)
	require.Contains(t, lines[0], `"message":"loaded progress for stream ab"`)
	require.Contains(t, lines[1], `"level":"warn"`)
}

// The sink (or notify) is Run's argument now: a nil one is refused at once,
// before the reader starts.
func TestRunRejectsANilSink(t *testing.T) {
	src, err := New(&gocql.Session{}, "ks", "s", DefaultConfig(), nopDead, zerolog.Nop(), nil)
	require.NoError(t, err)
	require.ErrorContains(t, src.Run(context.Background(), nil), "notify")
	require.ErrorContains(t, src.RunChanges(context.Background(), nil), "sink")
	_ = nopSink
}
