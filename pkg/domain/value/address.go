package value

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/orderstream/orderstream/pkg/domain/internal/text"
)

// Field limits of an Address, in characters. They are generous enough for
// any postal system and small enough to print on a shipping label.
const (
	MaxAddressLabelLen  = 40
	MaxAddressLineLen   = 200
	MaxAddressCityLen   = 100
	MaxAddressRegionLen = 100
	MaxPostalCodeLen    = 20
)

// AddressFields is the raw input of NewAddress. Naming the fields avoids a
// constructor with seven string parameters that are easy to swap.
type AddressFields struct {
	Label      string `json:"label"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	Region     string `json:"region"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// Address is a postal address. Every text field is trimmed and free of
// control characters; line1, city, postal code and country are required.
// Nothing else about the format is checked, because postal formats differ
// by country and a wrong guess would turn away a real customer.
type Address struct {
	label      string
	line1      string
	line2      string
	city       string
	region     string
	postalCode string
	country    CountryCode
}

// NewAddress validates and normalises f. The first field at fault is
// reported; its Field is the snake_case field name ("postal_code").
func NewAddress(f AddressFields) (Address, error) {
	var (
		a   Address
		err error
	)
	fields := []struct {
		dst  *string
		raw  string
		spec text.Spec
	}{
		{&a.label, f.Label, text.Spec{Code: "address.label", Field: "label", Label: "the address label", Max: MaxAddressLabelLen}},
		{&a.line1, f.Line1, text.Spec{Code: "address.line1", Field: "line1", Label: "the first address line", Max: MaxAddressLineLen, Required: true}},
		{&a.line2, f.Line2, text.Spec{Code: "address.line2", Field: "line2", Label: "the second address line", Max: MaxAddressLineLen}},
		{&a.city, f.City, text.Spec{Code: "address.city", Field: "city", Label: "the city", Max: MaxAddressCityLen, Required: true}},
		{&a.region, f.Region, text.Spec{Code: "address.region", Field: "region", Label: "the region", Max: MaxAddressRegionLen}},
		{&a.postalCode, f.PostalCode, text.Spec{Code: "address.postal_code", Field: "postal_code", Label: "the postal code", Max: MaxPostalCodeLen, Required: true}},
	}
	for _, fl := range fields {
		if *fl.dst, err = text.Field(fl.raw, fl.spec); err != nil {
			return Address{}, err
		}
	}
	if a.country, err = NewCountryCode(f.Country); err != nil {
		return Address{}, err
	}
	return a, nil
}

// Label returns the optional name the customer gave the address ("Home").
func (a Address) Label() string { return a.label }

// Line1 returns the first address line.
func (a Address) Line1() string { return a.line1 }

// Line2 returns the optional second address line.
func (a Address) Line2() string { return a.line2 }

// City returns the city.
func (a Address) City() string { return a.city }

// Region returns the optional region (state, province, county).
func (a Address) Region() string { return a.region }

// PostalCode returns the postal code.
func (a Address) PostalCode() string { return a.postalCode }

// Country returns the country.
func (a Address) Country() CountryCode { return a.country }

// IsZero reports whether a is the zero value (no address).
func (a Address) IsZero() bool { return a == Address{} }

// Fields returns the normalised fields; NewAddress(a.Fields()) == a.
func (a Address) Fields() AddressFields {
	return AddressFields{
		Label:      a.label,
		Line1:      a.line1,
		Line2:      a.line2,
		City:       a.city,
		Region:     a.region,
		PostalCode: a.postalCode,
		Country:    a.country.String(),
	}
}

// String returns the address on one line, comma-separated, for logs.
func (a Address) String() string {
	if a.IsZero() {
		return ""
	}
	var b bytes.Buffer
	for _, s := range []string{a.line1, a.line2, a.city, a.region, a.postalCode, a.country.String()} {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// MarshalJSON encodes a as its fields, or null for the zero value.
func (a Address) MarshalJSON() ([]byte, error) {
	if a.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(a.Fields())
}

// UnmarshalJSON decodes and validates what MarshalJSON produced; an
// address with opaque fields (sealed or redacted, see IsOpaque) is kept as
// it is.
func (a *Address) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*a = Address{}
		return nil
	}
	var f AddressFields
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("decoding address: %w", err)
	}
	if v, ok := OpaqueAddress(f); ok {
		*a = v
		return nil
	}
	v, err := NewAddress(f)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
