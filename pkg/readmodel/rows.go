package readmodel

import (
	"time"

	"github.com/gocql/gocql"
)

// The read-model tables (schema/v0001_initial/common.cql).
const (
	OrderReadModelTable    = "order_read_model"
	OrdersByCustomerTable  = "orders_by_customer"
	OrdersByStatusTable    = "orders_by_status"
	CustomerReadModelTable = "customer_read_model"
)

// Tables lists every read-model table.
func Tables() []string {
	return []string{OrderReadModelTable, OrdersByCustomerTable, OrdersByStatusTable, CustomerReadModelTable}
}

// OrderItemRow is one element of order_read_model.items, a value of the
// order_item UDT; gocql maps it through the cql tags.
type OrderItemRow struct {
	ProductID      string `cql:"product_id"`
	Quantity       int    `cql:"quantity"`
	UnitPriceMinor int64  `cql:"unit_price_minor"`
	Currency       string `cql:"currency"`
}

// OrderRow is a row of order_read_model. Times are UTC at millisecond
// precision; a zero time is a null column.
type OrderRow struct {
	OrderID    gocql.UUID
	CustomerID gocql.UUID
	// Items is nil when the order has none.
	Items     []OrderItemRow
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
	Version   int64
	// IsDeleted is true, and DeletedAt set, once the order is cancelled.
	IsDeleted bool
	DeletedAt time.Time
	// Carrier and TrackingNumber are set, and ShippedAt, once the order is
	// shipped; DeliveredAt once it is delivered, with the signature if one
	// was taken. Empty strings and zero times are null columns.
	// DeliverySignature is personal: sealed under the key of the order's
	// customer as the event carries it (or clear, if written before
	// encryption); query-service opens it.
	Carrier           string
	TrackingNumber    string
	ShippedAt         time.Time
	DeliveredAt       time.Time
	DeliverySignature string
	// CancelReason and CancelledBy are set once the order is cancelled.
	CancelReason string
	CancelledBy  string
	// ItemCount is the number of units ordered: the sum of the items'
	// quantities.
	ItemCount int
	// Totals is the sum of the line totals (quantity × unit price) per
	// currency code, in minor units; nil when the order has no items.
	Totals map[string]int64
}

// CustomerOrderRow is a row of orders_by_customer, keyed by (CustomerID;
// CreatedAt desc, OrderID).
type CustomerOrderRow struct {
	CustomerID gocql.UUID
	CreatedAt  time.Time
	OrderID    gocql.UUID
	Status     string
	Version    int64
	// ItemCount, Totals and UpdatedAt are as in OrderRow: what a listing
	// shows of each order besides its status.
	ItemCount int
	Totals    map[string]int64
	UpdatedAt time.Time
}

// StatusOrderRow is a row of orders_by_status, keyed by (Status;
// CreatedAt desc, OrderID).
type StatusOrderRow struct {
	Status     string
	CreatedAt  time.Time
	OrderID    gocql.UUID
	CustomerID gocql.UUID
	Version    int64
	// ItemCount, Totals and UpdatedAt are as in OrderRow.
	ItemCount int
	Totals    map[string]int64
	UpdatedAt time.Time
}

// AddressRow is a value of the address UDT; gocql maps it through the cql
// tags. Optional fields are empty strings.
type AddressRow struct {
	Label      string `cql:"label"`
	Line1      string `cql:"line1"`
	Line2      string `cql:"line2"`
	City       string `cql:"city"`
	Region     string `cql:"region"`
	PostalCode string `cql:"postal_code"`
	Country    string `cql:"country"`
}

// CustomerRow is a row of customer_read_model. Name, Email, Phone and the
// addresses' fields are personal: sealed as the events carry them ("pd:…",
// opened only by query-service) or clear if written before encryption;
// once the customer is forgotten, Name, Email and Phone read
// personal.Redacted and there are no addresses (CustomerRowOf).
type CustomerRow struct {
	CustomerID gocql.UUID
	Name       string
	Email      string
	// Phone is empty when the customer gave none (a null column).
	Phone string
	// Addresses is keyed by address id, and nil when there are none.
	Addresses map[gocql.UUID]AddressRow
	Tier      string
	Status    string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}
