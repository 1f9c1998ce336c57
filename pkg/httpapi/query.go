package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// BadParameter is the 400 answer naming the query parameter (or field) at
// fault, with the API's code, such as "query.invalid_parameter".
func BadParameter(code, name, detail string) *ProblemError {
	return NewProblem(http.StatusBadRequest, "invalid-parameter", "Invalid parameter", detail).
		WithField(name).WithCode(code)
}

// ParseQuery reads a query string strictly: a parameter not in allowed, or
// given more than once, is a BadParameter naming it (the first by name, so
// the same one every time), so that a misspelt filter is an error rather
// than a silently wider answer.
func ParseQuery(raw, code string, allowed ...string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, BadParameter(code, "query", "the query string is not valid URL encoding")
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			takes := "no query parameters"
			if len(allowed) > 0 {
				takes = strings.Join(allowed, ", ")
			}
			return nil, BadParameter(code, name, fmt.Sprintf("unknown query parameter %q; this endpoint takes %s", name, takes))
		}
		if len(v[name]) > 1 {
			return nil, BadParameter(code, name, name+" may be given once")
		}
	}
	return v, nil
}
