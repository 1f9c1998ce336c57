package service

import (
	"context"
	"errors"
	"testing"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/admin"
)

func newDeps() *Deps {
	return &Deps{Name: "test", Logger: zerolog.Nop(), Admin: admin.New(admin.DefaultConfig("127.0.0.1:0"), zerolog.Nop(), prometheus.NewRegistry())}
}

// The supervisor waits for the dependencies the wiring named, whatever
// their names, and only for those: a failing check that is not a
// dependency (a projector's lag) spends the budget as usual.
func TestDependenciesAreTheCallersChecks(t *testing.T) {
	ctx := context.Background()
	d := newDeps()
	down := errors.New("unreachable")
	var dbErr error
	d.Dependency("events-db", func(context.Context) error { return dbErr })
	d.Admin.AddCheck("lag", func(context.Context) error { return errors.New("behind") })
	require.Equal(t, []string{"events-db"}, d.Dependencies())
	require.NoError(t, d.dependenciesReady(ctx), "lag is no dependency")

	dbErr = down
	err := d.dependenciesReady(ctx)
	require.ErrorIs(t, err, down)
	require.ErrorContains(t, err, "events-db")
	require.Equal(t, down, d.Admin.Ready(ctx)["events-db"], "also a readiness check")

	d.Dependency("events-db", func(context.Context) error { return nil })
	require.Equal(t, []string{"events-db"}, d.Dependencies(), "named once")
	require.NoError(t, d.dependenciesReady(ctx))
}

func TestNoDependenciesNoWait(t *testing.T) {
	require.NoError(t, newDeps().dependenciesReady(context.Background()))
}

func TestConnectOptions(t *testing.T) {
	o := connectOptionsOf(CheckKafka, nil)
	require.Equal(t, "kafka", o.check)
	o = connectOptionsOf(CheckCQL, []ConnectOption{CheckName("events-db"), WithSarama(func(sc *sarama.Config) { sc.ClientID = "x" })})
	require.Equal(t, "events-db", o.check)
	sc := sarama.NewConfig()
	for _, c := range o.configure {
		c(sc)
	}
	require.Equal(t, "x", sc.ClientID)
}
