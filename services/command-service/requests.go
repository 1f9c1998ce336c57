package main

import (
	"fmt"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
	"github.com/orderstream/orderstream/pkg/httpapi"
)

// The JSON bodies of the command API. Pointers mark required fields, so
// that a missing field is told apart from an empty one and answered with
// 400 naming it; the domain then checks what the values mean (422).

type moneyBody struct {
	AmountMinor *int64  `json:"amount_minor"`
	Currency    *string `json:"currency"`
}

type itemBody struct {
	ProductID *string    `json:"product_id"`
	Quantity  *int64     `json:"quantity"`
	UnitPrice *moneyBody `json:"unit_price"`
}

type itemsBody struct {
	Items []itemBody `json:"items"`
}

func (b *itemsBody) Validate() error {
	if b.Items == nil {
		return httpapi.MissingField("items")
	}
	return validateItems(b.Items)
}

func validateItems(items []itemBody) error {
	for i, it := range items {
		prefix := fmt.Sprintf("items[%d].", i)
		switch {
		case it.ProductID == nil:
			return httpapi.MissingField(prefix + "product_id")
		case it.Quantity == nil:
			return httpapi.MissingField(prefix + "quantity")
		case it.UnitPrice == nil:
			return httpapi.MissingField(prefix + "unit_price")
		case it.UnitPrice.AmountMinor == nil:
			return httpapi.MissingField(prefix + "unit_price.amount_minor")
		case it.UnitPrice.Currency == nil:
			return httpapi.MissingField(prefix + "unit_price.currency")
		}
	}
	return nil
}

// toItems builds the value objects; a rule broken by one item names it.
func toItems(items []itemBody) ([]value.OrderItem, error) {
	out := make([]value.OrderItem, len(items))
	for i, it := range items {
		field := fmt.Sprintf("items[%d]", i)
		if !letters(*it.UnitPrice.Currency, 3, false) {
			// openapi.json says ^[A-Z]{3}$; the domain would also take "eur"
			// and " EUR", which the document refuses.
			return nil, domain.NewValidationError("currency.invalid_format", field+".unit_price.currency",
				"a currency is three upper-case letters, an ISO 4217 code like EUR")
		}
		cur, err := value.NewCurrency(*it.UnitPrice.Currency)
		if err != nil {
			return nil, domain.PrefixField(err, field+".unit_price")
		}
		price, err := value.NewMoney(*it.UnitPrice.AmountMinor, cur)
		if err != nil {
			return nil, domain.PrefixField(err, field+".unit_price")
		}
		item, err := value.NewOrderItem(*it.ProductID, *it.Quantity, price)
		if err != nil {
			return nil, domain.PrefixField(err, field)
		}
		out[i] = item
	}
	return out, nil
}

type createOrderBody struct {
	OrderID    *string    `json:"order_id"`
	CustomerID *string    `json:"customer_id"`
	Items      []itemBody `json:"items"`
}

func (b *createOrderBody) Validate() error {
	switch {
	case b.CustomerID == nil:
		return httpapi.MissingField("customer_id")
	case b.Items == nil:
		return httpapi.MissingField("items")
	}
	return validateItems(b.Items)
}

type shipBody struct {
	Carrier        *string `json:"carrier"`
	TrackingNumber *string `json:"tracking_number"`
}

func (b *shipBody) Validate() error {
	switch {
	case b.Carrier == nil:
		return httpapi.MissingField("carrier")
	case b.TrackingNumber == nil:
		return httpapi.MissingField("tracking_number")
	}
	return nil
}

type deliverBody struct {
	Signature string `json:"signature"`
}

type cancelBody struct {
	Reason      *string `json:"reason"`
	CancelledBy *string `json:"cancelled_by"`
}

func (b *cancelBody) Validate() error {
	switch {
	case b.Reason == nil:
		return httpapi.MissingField("reason")
	case b.CancelledBy == nil:
		return httpapi.MissingField("cancelled_by")
	}
	return nil
}

type registerBody struct {
	CustomerID *string `json:"customer_id"`
	Name       *string `json:"name"`
	Email      *string `json:"email"`
	Phone      string  `json:"phone"`
}

func (b *registerBody) Validate() error {
	switch {
	case b.Name == nil:
		return httpapi.MissingField("name")
	case b.Email == nil:
		return httpapi.MissingField("email")
	}
	return nil
}

type profileBody struct {
	Name *string `json:"name"`
}

func (b *profileBody) Validate() error {
	if b.Name == nil {
		return httpapi.MissingField("name")
	}
	return nil
}

type emailBody struct {
	Email *string `json:"email"`
}

func (b *emailBody) Validate() error {
	if b.Email == nil {
		return httpapi.MissingField("email")
	}
	return nil
}

type phoneBody struct {
	// Phone is required; an empty string removes the phone number.
	Phone *string `json:"phone"`
}

func (b *phoneBody) Validate() error {
	if b.Phone == nil {
		return httpapi.MissingField("phone")
	}
	return nil
}

type addressBody struct {
	AddressID  *string `json:"address_id"`
	Label      string  `json:"label"`
	Line1      *string `json:"line1"`
	Line2      string  `json:"line2"`
	City       *string `json:"city"`
	Region     string  `json:"region"`
	PostalCode *string `json:"postal_code"`
	Country    *string `json:"country"`
}

func (b *addressBody) Validate() error {
	switch {
	case b.Line1 == nil:
		return httpapi.MissingField("line1")
	case b.City == nil:
		return httpapi.MissingField("city")
	case b.PostalCode == nil:
		return httpapi.MissingField("postal_code")
	case b.Country == nil:
		return httpapi.MissingField("country")
	}
	return nil
}

func (b *addressBody) address() (value.Address, error) {
	if !letters(*b.Country, 2, true) {
		// openapi.json says ^[A-Za-z]{2}$: no surrounding space.
		return value.Address{}, domain.NewValidationError("country.invalid_format", "country",
			"a country is two letters, an ISO 3166-1 code like DE")
	}
	return value.NewAddress(value.AddressFields{
		Label: b.Label, Line1: *b.Line1, Line2: b.Line2, City: *b.City,
		Region: b.Region, PostalCode: *b.PostalCode, Country: *b.Country,
	})
}

type tierBody struct {
	Tier *string `json:"tier"`
}

func (b *tierBody) Validate() error {
	if b.Tier == nil {
		return httpapi.MissingField("tier")
	}
	return nil
}

type reasonBody struct {
	Reason *string `json:"reason"`
}

func (b *reasonBody) Validate() error {
	if b.Reason == nil {
		return httpapi.MissingField("reason")
	}
	return nil
}

// emptyBody is the body of commands that carry nothing (confirm,
// reactivate); it may be absent or an empty object.
type emptyBody struct{}

// accepted is the answer to every command that was carried out.
type accepted struct {
	ID        string `json:"id"`
	Version   int64  `json:"version"`
	AddressID string `json:"address_id,omitempty"`
}

// letters tells whether s is exactly n ASCII letters, upper-case only
// unless anyCase.
func letters(s string, n int, anyCase bool) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z') && !(anyCase && c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
