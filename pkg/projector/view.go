package projector

import (
	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// View is one read model: how an aggregate's events fold into the state the
// projector keeps for it, and which rows of the read model that state is.
//
// The projector stores the state S (as JSON) with the aggregate's applied
// sequence in projection_checkpoints, and writes the rows and the
// checkpoint in one logged batch, so that they never disagree.
type View[S any] struct {
	// Name names the projector in projection_offsets,
	// projection_checkpoints, dead_letter_queue and metrics, e.g.
	// "order-read-model".
	Name string
	// AggregateType is the type whose events the view reads ("order" or
	// "customer"); its topic is record.TopicOf(prefix, AggregateType).
	AggregateType string
	// Tables are the read-model tables the view owns; a rebuild truncates
	// them.
	Tables []string
	// Fold applies one event, already upcast to the current layout, to the
	// state. The zero S is the state before the first event. An error is
	// permanent (the event cannot be read): the event is dead-lettered and
	// the aggregate parked for this projector.
	Fold func(s S, e eventstore.Event) (S, error)
	// Write adds to b the statements that turn the aggregate's rows from
	// those of old into those of s. existed says whether old was ever
	// written (false before the aggregate's first event reached the view).
	// seq is the sequence of the last event folded into s; rows carry it as
	// their version.
	Write func(b *gocql.Batch, id gocql.UUID, old S, existed bool, s S, seq int64) error
}
