// Command projector-orders-by-status projects events into orders_by_status
// (pkg/readmodel), with the machinery every projector shares
// (pkg/projector): a consumer group of its own, idempotent by sequence,
// gaps filled from event_store, failures dead-lettered and parked, and
// rebuilds from event_store (--rebuild or POST /rebuild on the admin port).
package main

import (
	"os"

	"github.com/orderstream/orderstream/pkg/projector"
	"github.com/orderstream/orderstream/pkg/readmodel"
	"github.com/orderstream/orderstream/pkg/service"
)

func main() {
	os.Exit(service.Main("projector-orders-by-status", os.Args[1:], projector.DefaultServiceConfig(":9087"), projector.Wire(readmodel.OrdersByStatus())))
}
