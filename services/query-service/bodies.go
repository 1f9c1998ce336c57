package main

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/orderstream/orderstream/pkg/eventstore"
	"github.com/orderstream/orderstream/pkg/readmodel"
)

// The JSON answers. An order or customer has one representation whether it
// comes from its read model row or is folded from event_store at a past
// version, so that a client can compare the two.

type money struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

type orderItem struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
	UnitPrice money  `json:"unit_price"`
}

type orderBody struct {
	ID         string      `json:"id"`
	CustomerID string      `json:"customer_id"`
	Status     string      `json:"status"`
	Items      []orderItem `json:"items"`
	// ItemCount and Totals are absent only from a row written before
	// schema v0005 and not rewritten since (an order always has an item):
	// a rebuild of the views fills them.
	ItemCount         int        `json:"item_count,omitempty"`
	Totals            []money    `json:"totals,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	Version           int64      `json:"version"`
	Carrier           string     `json:"carrier,omitempty"`
	TrackingNumber    string     `json:"tracking_number,omitempty"`
	ShippedAt         *time.Time `json:"shipped_at,omitempty"`
	DeliveredAt       *time.Time `json:"delivered_at,omitempty"`
	DeliverySignature string     `json:"delivery_signature,omitempty"`
	CancelReason      string     `json:"cancel_reason,omitempty"`
	CancelledBy       string     `json:"cancelled_by,omitempty"`
	IsDeleted         bool       `json:"is_deleted"`
	DeletedAt         *time.Time `json:"deleted_at,omitempty"`
}

func orderFromRow(r readmodel.OrderRow) orderBody {
	b := orderBody{
		ID: r.OrderID.String(), CustomerID: r.CustomerID.String(), Status: r.Status,
		Items:     make([]orderItem, 0, len(r.Items)),
		ItemCount: r.ItemCount, Totals: totalsOf(r.Totals),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: r.Version,
		Carrier: r.Carrier, TrackingNumber: r.TrackingNumber, ShippedAt: optionalTime(r.ShippedAt), DeliveredAt: optionalTime(r.DeliveredAt),
		DeliverySignature: r.DeliverySignature, CancelReason: r.CancelReason, CancelledBy: r.CancelledBy,
		IsDeleted: r.IsDeleted, DeletedAt: optionalTime(r.DeletedAt),
	}
	for _, it := range r.Items {
		b.Items = append(b.Items, orderItem{ProductID: it.ProductID, Quantity: it.Quantity, UnitPrice: money{it.UnitPriceMinor, it.Currency}})
	}
	return b
}

// totalsOf lists the totals per currency, ordered by currency code; nil
// when there are none.
func totalsOf(m map[string]int64) []money {
	if len(m) == 0 {
		return nil
	}
	out := make([]money, 0, len(m))
	for c, amount := range m {
		out = append(out, money{AmountMinor: amount, Currency: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out
}

// optionalTime is t in UTC, or nil (an absent field) when t is zero.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type address struct {
	ID         string `json:"id"`
	Label      string `json:"label,omitempty"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

type customerBody struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone,omitempty"`
	Addresses []address `json:"addresses"`
	Tier      string    `json:"tier"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   int64     `json:"version"`
}

func customerFromRow(r readmodel.CustomerRow) customerBody {
	b := customerBody{
		ID: r.CustomerID.String(), Name: r.Name, Email: r.Email, Phone: r.Phone,
		Addresses: make([]address, 0, len(r.Addresses)),
		Tier:      r.Tier, Status: r.Status, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: r.Version,
	}
	for id, a := range r.Addresses {
		b.Addresses = append(b.Addresses, address{
			ID: id.String(), Label: a.Label, Line1: a.Line1, Line2: a.Line2, City: a.City,
			Region: a.Region, PostalCode: a.PostalCode, Country: a.Country,
		})
	}
	// The table keeps them in a map: order them by id, stable across reads.
	sort.Slice(b.Addresses, func(i, j int) bool { return b.Addresses[i].ID < b.Addresses[j].ID })
	return b
}

// orderSummary is one order of a listing. ItemCount, Totals and
// UpdatedAt are absent only from a row written before schema v0005 and not
// rewritten since.
type orderSummary struct {
	ID         string     `json:"id"`
	CustomerID string     `json:"customer_id"`
	Status     string     `json:"status"`
	ItemCount  int        `json:"item_count,omitempty"`
	Totals     []money    `json:"totals,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at,omitempty"`
	Version    int64      `json:"version"`
}

type orderPage struct {
	Orders        []orderSummary `json:"orders"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

// eventBody is one stored event with its envelope.
type eventBody struct {
	EventID       string            `json:"event_id"`
	Type          string            `json:"type"`
	Version       int32             `json:"version"`
	Sequence      int64             `json:"sequence"`
	OccurredAt    time.Time         `json:"occurred_at"`
	CorrelationID string            `json:"correlation_id,omitempty"`
	CausationID   string            `json:"causation_id,omitempty"`
	TraceContext  map[string]string `json:"trace_context,omitempty"`
	// Payload is the event as stored (protojson of its layout Version).
	Payload json.RawMessage `json:"payload"`
}

func eventFrom(e eventstore.Event) eventBody {
	payload := json.RawMessage(e.Data)
	if !json.Valid(e.Data) {
		// Never the case for what the write side stores; should a row be
		// damaged, show it as a string rather than fail the whole page.
		payload, _ = json.Marshal(string(e.Data))
	}
	return eventBody{
		EventID: e.EventID.String(), Type: e.Type, Version: e.Version, Sequence: e.Sequence,
		OccurredAt: e.OccurredAt.UTC(), CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		TraceContext: e.TraceContext, Payload: payload,
	}
}

type historyPage struct {
	AggregateID   string      `json:"aggregate_id"`
	AggregateType string      `json:"aggregate_type"`
	Version       int64       `json:"version"`
	Events        []eventBody `json:"events"`
	NextPageToken string      `json:"next_page_token,omitempty"`
}
