package projector

import (
	"strconv"

	"github.com/gocql/gocql"

	"github.com/orderstream/orderstream/pkg/eventstore"
)

// View is one read model: how an aggregate's events fold into the state the
// projector keeps for it, and which rows of the read model that state is.
//
// The projector stores the state S (as JSON) with the aggregate's applied
// sequence in projection_checkpoints, and writes the rows first and the
// checkpoint once they are written (Checkpoints), so that the rows are
// never behind the checkpoint.
type View[S any] struct {
	// Name names the projector in projection_offsets,
	// projection_checkpoints, dead_letter_queue and metrics, e.g.
	// "order-read-model".
	Name string
	// AggregateType is the type whose events the view reads ("order" or
	// "customer"); its topic is record.TopicOf(prefix, AggregateType).
	AggregateType string
	// Tables are the read-model tables the view owns, in the view's
	// generation (TableName).
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
	// their version. The statements must be a function of (old, s, seq),
	// since they are written again from old should the checkpoint not
	// follow them; Write sets b.Type to gocql.LoggedBatch when a write
	// from old to a later state would not overwrite or delete its rows
	// (a row moving to another key), to have them land with the checkpoint.
	Write func(b *gocql.Batch, id gocql.UUID, old S, existed bool, s S, seq int64) error
	// At returns the view writing generation gen's tables (TableName); a
	// view without it has one generation and cannot be rebuilt beside the
	// live one.
	At func(gen int) View[S]
	// Schema returns the CQL statements that create generation gen's
	// tables (CREATE TABLE IF NOT EXISTS, in the session's keyspace), run
	// by a rebuild before it writes the generation.
	Schema func(gen int) []string
	// Audit, when set, lets the auditor (audit.go) compare the view's rows
	// with the events and find rows that should not exist; without it the
	// auditor compares checkpoints only.
	Audit *ViewAudit[S]
}

// TableName is generation gen's name of a view's table called base in
// generation 1: base itself for generation 1 (the tables of
// schema/v0001_initial), base + "_g<gen>" for the generations rebuilds
// create.
func TableName(base string, gen int) string {
	if gen <= 1 {
		return base
	}
	return base + "_g" + strconv.Itoa(gen)
}

// CheckpointName is the projection_name under which generation gen of the
// view called view keeps its checkpoints in projection_checkpoints: the
// view's name for generation 1, "<view>@g<gen>" for the others, so that
// two generations never share a folded state.
func CheckpointName(view string, gen int) string {
	if gen <= 1 {
		return view
	}
	return view + "@g" + strconv.Itoa(gen)
}
