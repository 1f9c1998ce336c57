package readmodel

// The CQL of each view's table, in its current layout (v0001 and the
// columns v0005 added), for a table of any generation: a rebuild creates
// generation g's tables from these (projector.View.Schema), in the
// session's keyspace. They use the types order_item and address of
// schema/v0001_initial. A view schema change is made here (and in a
// migration for generation 1's table, if it is to be kept): the next
// rebuild creates the new generation with the new layout
// (docs/runbook.md, "Changing a view's schema").

func orderReadModelSchema(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    order_id           uuid PRIMARY KEY,
    customer_id        uuid,
    items              list<frozen<order_item>>,
    status             text,
    created_at         timestamp,
    updated_at         timestamp,
    version            bigint,
    is_deleted         boolean,
    deleted_at         timestamp,
    carrier            text,
    tracking_number    text,
    shipped_at         timestamp,
    delivered_at       timestamp,
    delivery_signature text,
    cancel_reason      text,
    cancelled_by       text,
    item_count         int,
    totals             frozen<map<text, bigint>>
)`
}

func ordersByCustomerSchema(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    customer_id uuid,
    created_at  timestamp,
    order_id    uuid,
    status      text,
    version     bigint,
    item_count  int,
    totals      frozen<map<text, bigint>>,
    updated_at  timestamp,
    PRIMARY KEY (customer_id, created_at, order_id)
) WITH CLUSTERING ORDER BY (created_at DESC, order_id ASC)`
}

func ordersByStatusSchema(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    status      text,
    created_at  timestamp,
    order_id    uuid,
    customer_id uuid,
    version     bigint,
    item_count  int,
    totals      frozen<map<text, bigint>>,
    updated_at  timestamp,
    PRIMARY KEY (status, created_at, order_id)
) WITH CLUSTERING ORDER BY (created_at DESC, order_id ASC)`
}

func customerReadModelSchema(table string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (
    customer_id uuid PRIMARY KEY,
    name        text,
    email       text,
    phone       text,
    addresses   map<uuid, frozen<address>>,
    tier        text,
    status      text,
    version     bigint,
    created_at  timestamp,
    updated_at  timestamp
)`
}
