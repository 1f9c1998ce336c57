package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gocql/gocql"
)

// tableCounts are Cassandra's own per-table operation counters
// (system_views.local_read_latency, local_write_latency and
// local_scan_latency of Apache Cassandra 4+), keyed "read
// keyspace.table", "write …", "scan …". They count operations the node
// ran locally, whoever asked: the keyspace of `make up` is the system's
// own, while system.paxos and system.batches also count other users of the
// same Cassandra (other tests on a shared stack).
type tableCounts map[string]int64

// countViews are the views read, and the name each operation goes by.
var countViews = []struct{ view, op string }{
	{"local_read_latency", "read"},
	{"local_write_latency", "write"},
	{"local_scan_latency", "scan"},
}

// cqlCounter reads the counters of the system's keyspace and of the
// system tables that the system's LWTs and logged batches write.
type cqlCounter struct {
	session  *gocql.Session
	keyspace string
}

func newCQLCounter(hosts []string, keyspace string) (*cqlCounter, error) {
	cluster := gocql.NewCluster(hosts...)
	cluster.Timeout = 5 * time.Second
	cluster.ConnectTimeout = 5 * time.Second
	cluster.NumConns = 1
	cluster.DisableInitialHostLookup = true
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("connecting to cassandra %v: %w", hosts, err)
	}
	return &cqlCounter{session: session, keyspace: keyspace}, nil
}

func (c *cqlCounter) close() { c.session.Close() }

// interesting tells the tables whose counts are shown: the system's
// keyspace, Paxos state and the batchlog.
func (c *cqlCounter) interesting(ks, table string) bool {
	return ks == c.keyspace || (ks == "system" && (table == "paxos" || table == "batches"))
}

// read takes the counters now.
func (c *cqlCounter) read() (tableCounts, error) {
	out := tableCounts{}
	for _, v := range countViews {
		iter := c.session.Query("SELECT keyspace_name, table_name, count FROM system_views." + v.view).Iter()
		var (
			ks, table string
			n         int64
		)
		for iter.Scan(&ks, &table, &n) {
			if c.interesting(ks, table) {
				out[v.op+" "+ks+"."+table] = n
			}
		}
		if err := iter.Close(); err != nil {
			return nil, fmt.Errorf("reading system_views.%s: %w", v.view, err)
		}
	}
	return out, nil
}

// since is what happened between then and c.
func (c tableCounts) since(then tableCounts) tableCounts {
	out := tableCounts{}
	for k, n := range c {
		if d := n - then[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// top lists the keys by count, highest first, at most n of them.
func (c tableCounts) top(n int) []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// shortTable drops the system keyspace's name from a key for the tables.
func shortTable(key string, keyspace string) string {
	return strings.Replace(key, " "+keyspace+".", " ", 1)
}
