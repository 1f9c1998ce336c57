// Command projector-order-read-model projects events into order_read_model
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
	os.Exit(service.Main("projector-order-read-model", os.Args[1:], projector.DefaultServiceConfig(":9085"), projector.Wire(readmodel.OrderReadModel())))
}
