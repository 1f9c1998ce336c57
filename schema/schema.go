// Package schema holds orderstream's CQL migrations, one folder per version
// (vNNNN_name), embedded so that the schema-migrator image carries them.
//
// Each folder has common.cql, applied on every CQL database, and may have
// scylladb.cql and cassandra.cql, applied after it on that database only
// (ScyllaDB's CDC log and tablets options, for instance). Statements end with
// a semicolon at the end of a line; lines starting with -- are comments. A
// statement may name the keyspace as {{keyspace}}. An applied migration is
// never edited: the migrator refuses to run when a checksum changed.
package schema

import "embed"

// FS holds every migration folder.
//
//go:embed v*/*.cql
var FS embed.FS
