// Package migrate applies orderstream's versioned CQL migrations exactly
// once: it records each applied version with its checksum in the keyspace,
// holds an LWT lock while it works so that concurrent runs (several pods of
// the migration Job, a developer and CI) wait for each other, and can be
// re-run at any time.
package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/orderstream/orderstream/pkg/cql"
)

// Migration is one schema version, its statements for one database flavour.
type Migration struct {
	Version    int
	Name       string
	Statements []string
	// Checksum covers the files the migration was read from, so that an
	// applied migration edited afterwards is noticed.
	Checksum string
}

var dirPattern = regexp.MustCompile(`^v(\d{4})_([a-z0-9_]+)$`)

// Load reads every migration folder of fsys for flavour, in version order.
// The keyspace placeholder is filled in with keyspace.
func Load(fsys fs.FS, flavour cql.Flavour, keyspace string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m := dirPattern.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration folder %q: want vNNNN_name", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		if prev, dup := seen[version]; dup {
			return nil, fmt.Errorf("migration version %d appears twice: %s and %s", version, prev, e.Name())
		}
		seen[version] = e.Name()

		hash := sha256.New()
		var stmts []string
		for _, file := range []string{"common.cql", string(flavour) + ".cql"} {
			body, err := fs.ReadFile(fsys, path.Join(e.Name(), file))
			if err != nil {
				if file == "common.cql" {
					return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
				}
				continue
			}
			fmt.Fprintf(hash, "%s\n%s\n", file, body)
			parsed, err := Split(string(body))
			if err != nil {
				return nil, fmt.Errorf("migration %s/%s: %w", e.Name(), file, err)
			}
			for _, s := range parsed {
				stmts = append(stmts, strings.ReplaceAll(s, "{{keyspace}}", keyspace))
			}
		}
		out = append(out, Migration{Version: version, Name: m[2], Statements: stmts, Checksum: hex.EncodeToString(hash.Sum(nil))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Split cuts a CQL file into statements: each ends with a semicolon at the
// end of a line, and lines starting with -- are comments.
func Split(body string) ([]string, error) {
	var (
		stmts []string
		cur   []string
	)
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur = append(cur, strings.TrimRight(line, " \t\r"))
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(strings.Join(cur, "\n")), ";")
			stmts = append(stmts, stmt)
			cur = nil
		}
	}
	if len(cur) > 0 {
		return nil, fmt.Errorf("statement without a closing semicolon: %q", strings.Join(cur, " "))
	}
	return stmts, nil
}
