package deadletter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/deadletter"
)

func ids(n int) []gocql.UUID {
	out := make([]gocql.UUID, n)
	for i := range out {
		out[i] = gocql.UUID(uuid.New())
	}
	return out
}

func TestSetReloadReportsWhatLeft(t *testing.T) {
	id := ids(3)
	var s deadletter.Set
	s.Replace(map[gocql.UUID]bool{id[0]: true, id[1]: true})
	removed, err := s.Reload(context.Background(), func(context.Context) (map[gocql.UUID]bool, error) {
		return map[gocql.UUID]bool{id[1]: true, id[2]: true}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []gocql.UUID{id[0]}, removed)
	require.False(t, s.Has(id[0]))
	require.True(t, s.Has(id[1]))
	require.True(t, s.Has(id[2]))
	require.Equal(t, 2, s.Len())
}

// A read that overlaps a local change is older than the change: dropping
// it keeps an aggregate the component just unparked from coming back, and
// one it just parked from going away.
func TestSetReloadDropsAReadThatOverlappedAChange(t *testing.T) {
	id := ids(2)
	for name, change := range map[string]func(*deadletter.Set){
		"remove": func(s *deadletter.Set) { s.Remove(id[0]) },
		"add":    func(s *deadletter.Set) { s.Add(id[1]) },
	} {
		t.Run(name, func(t *testing.T) {
			var s deadletter.Set
			s.Replace(map[gocql.UUID]bool{id[0]: true})
			want := map[bool]bool{}
			removed, err := s.Reload(context.Background(), func(context.Context) (map[gocql.UUID]bool, error) {
				change(&s) // happens while the table is read
				want[true] = s.Has(id[0])
				want[false] = s.Has(id[1])
				return map[gocql.UUID]bool{id[0]: true}, nil // what the table said before
			})
			require.NoError(t, err)
			require.Empty(t, removed)
			require.Equal(t, want[true], s.Has(id[0]))
			require.Equal(t, want[false], s.Has(id[1]))
		})
	}
}

func TestSetReloadKeepsTheSetOnError(t *testing.T) {
	id := ids(1)
	var s deadletter.Set
	s.Add(id[0])
	_, err := s.Reload(context.Background(), func(context.Context) (map[gocql.UUID]bool, error) { return nil, errors.New("down") })
	require.Error(t, err)
	require.True(t, s.Has(id[0]))
	require.Equal(t, 0, s.Remove(id[0]))
	require.Equal(t, 0, s.Len())
}

func TestRetryConfigValidate(t *testing.T) {
	require.NoError(t, deadletter.DefaultRetryConfig().Validate())
	bad := deadletter.RetryConfig{}
	err := bad.Validate()
	require.ErrorContains(t, err, `"every"`)
	require.ErrorContains(t, err, `"claim_for"`)
	require.NotContains(t, err.Error(), `"max_every"`, "0 is no back-off")

	def := deadletter.DefaultRetryConfig()
	require.Greater(t, def.MaxEvery, def.Every, "an idle component backs off")
	require.LessOrEqual(t, def.MaxEvery, 4*time.Second, "a retry is taken within a fifth of the dlq-service's 20 s retry_timeout")
	bad = def
	bad.MaxEvery = -time.Second
	require.ErrorContains(t, bad.Validate(), `"max_every"`)
}
