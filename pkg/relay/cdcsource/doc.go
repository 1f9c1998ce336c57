// Package cdcsource tells the relay which event rows were committed, by
// reading the CDC log of event_store on ScyllaDB with scylla-cdc-go
// (DESIGN.md, "The relay"). The CDC log is the outbox: ScyllaDB writes it
// atomically with each commit, so a committed event row always appears in
// it, and nothing else has to be written to announce it.
//
// # What the log holds for one commit
//
// A commit is one conditional single-partition batch: a write of the static
// columns (INSERT … IF NOT EXISTS for a new aggregate, else UPDATE
// current_sequence … IF current_sequence = ?) and one INSERT per event row.
// The batch is applied with a single timestamp, so ScyllaDB logs it as one
// group of rows sharing cdc$time, numbered by cdc$batch_seq_no, which
// scylla-cdc-go hands over as one scyllacdc.Change:
//
//   - the static row is a delta row of its own with every clustering column
//     (sequence_number) null; it is an UPDATE (cdc$operation 1) because a
//     static row has no row marker, even when the statement was an INSERT;
//   - every event row is a delta row with cdc$operation 2 (INSERT), because
//     INSERT writes a row marker; should an event row ever be logged as an
//     UPDATE (an event written by an UPDATE statement, or a write split into
//     several log rows), it still counts as long as it sets event columns;
//   - the relay's later UPDATE of published_sequence is another static-only
//     row, and pre-images or post-images (not enabled in the schema) are
//     rows of their own operation types.
//
// Only the event rows reach the Sink, one Change each; everything else is
// counted as ignored. A row that cannot be read goes to the DeadLetter and
// is skipped, because an error from a consumer stops the library's whole
// reader: only an outage (the Sink failing) may do that.
//
// # Guarantees
//
// Delivery is at least once: progress is saved per CDC stream at most every
// Config.ProgressEvery, so a restart can hand over again the changes seen
// since the last save. The Sink is called concurrently for different
// streams but sequentially within one; all rows of one aggregate fall in one
// stream of a CDC generation and arrive in commit order, and a generation is
// read to its end before the next one starts. A write that reaches the log
// later than Config.ConfidenceWindow after its timestamp is not seen at all;
// the relay's gap filling and its scan source cover that case.
//
// # Progress
//
// Progress lives in relay_progress under the source name given to New, one
// row per (generation, stream). Rows whose stream_id is the empty blob are
// the source's own bookkeeping: one per generation marks that the generation
// was started, and the one of the generation at the Unix epoch holds the
// time the source first started reading.
//
// # Testing
//
// ScyllaDB is not available where this package was written (only Apache
// Cassandra, which has no ScyllaDB CDC), so it has NOT been run against a
// live ScyllaDB. Its unit tests feed the change consumer rows built in the
// test through the same small interface that scylla-cdc-go's ChangeRow
// satisfies, and the progress table is tested against Cassandra, which
// holds the same relay_progress table. How the log represents a commit, as
// described above, was read from the ScyllaDB CDC documentation and the
// scylla-cdc-go v1.2.1 source, not observed.
package cdcsource
