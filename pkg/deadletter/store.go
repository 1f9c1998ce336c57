package deadletter

import (
	"context"
	"strings"

	"github.com/gocql/gocql"
)

// Store is the dead-letter queue in Cassandra: dead_letter_queue with its
// query tables, parked_aggregates, dlq_retry_requests and
// dlq_retry_results. It is the only code that names those tables; build it
// once per session (NewStore) and hand it to whatever needs it. Memory is
// its in-memory twin; deadlettertest.Suite holds both to one contract.
type Store struct {
	session *gocql.Session
	// tables qualifies the table names of a statement with the keyspace
	// (nil: the session's own keyspace).
	tables *strings.Replacer
}

// The tables a Store reads and writes.
var tableNames = []string{
	"dead_letter_queue", "dead_letters_by_component", "dead_letters_by_event_type", "dead_letters_by_aggregate",
	"parked_aggregates", "dlq_retry_requests", "dlq_retry_results",
}

// NewStore builds the store over session. keyspace qualifies every table;
// empty means the keyspace the session is bound to.
func NewStore(session *gocql.Session, keyspace string) *Store {
	s := &Store{session: session}
	if keyspace != "" {
		var pairs []string
		for _, t := range tableNames {
			// Table names follow FROM, INTO, UPDATE or TABLE and a space,
			// and no column is named like a table.
			pairs = append(pairs, " "+t+" ", " "+keyspace+"."+t+" ")
		}
		s.tables = strings.NewReplacer(pairs...)
	}
	return s
}

// stmt qualifies the tables of a statement.
func (s *Store) stmt(stmt string) string {
	if s.tables == nil {
		return stmt
	}
	// A statement may end with its table (SELECT … FROM t).
	return strings.TrimSuffix(s.tables.Replace(stmt+" "), " ")
}

func (s *Store) query(stmt string, args ...any) *gocql.Query {
	return s.session.Query(s.stmt(stmt), args...)
}

// batch is a batch of the store's statements.
type batch struct {
	s *Store
	b *gocql.Batch
}

func (s *Store) batch(ctx context.Context, typ gocql.BatchType) *batch {
	return &batch{s: s, b: s.session.Batch(typ).WithContext(ctx)}
}

// Query adds a statement.
func (b *batch) Query(stmt string, args ...any) {
	b.b.Query(b.s.stmt(stmt), args...)
}

func (b *batch) exec() error {
	return b.s.session.ExecuteBatch(b.b)
}
