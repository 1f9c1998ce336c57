package domain

// Event is a fact an aggregate recorded. EventType names it in the event
// store's event_type column and in record headers, so it is part of the
// stored format: a published name never changes (a new shape gets a new
// event version and an upcaster instead).
type Event interface {
	EventType() string
}

// Command is a request to change an aggregate. CommandType names it for
// logs, metrics and idempotency records.
type Command interface {
	CommandType() string
}
