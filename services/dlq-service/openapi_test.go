package main

import (
	"testing"

	"github.com/orderstream/orderstream/pkg/httpapi/httpapitest"
)

// Every route is documented in openapi.json and every documented route
// exists, with the same methods.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	httpapitest.RequireOpenAPIMatchesRoutes(t, openAPI, (&api{}).routes)
}

// Every $ref points at a component that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	httpapitest.RequireOpenAPIRefsResolve(t, openAPI)
}
