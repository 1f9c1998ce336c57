package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
)

func TestErrorsAreFoundThroughWrapping(t *testing.T) {
	tests := []struct {
		name                     string
		err                      error
		rule, conflict, notFound bool
		code, field, message     string
	}{
		{
			name: "rule", err: domain.NewRuleError("order.items_empty", "an order needs at least one item"),
			rule: true, code: "order.items_empty", message: "order.items_empty: an order needs at least one item",
		},
		{
			name: "validation", err: domain.NewValidationError("email.required", "email", "an email address is required"),
			rule: true, code: "email.required", field: "email",
			message: "email.required (email): an email address is required",
		},
		{
			name: "conflict", err: domain.NewConflictError("order.already_exists", "exists"),
			conflict: true, code: "order.already_exists", message: "order.already_exists: exists",
		},
		{
			name: "not found", err: domain.NewNotFoundError("customer.address_not_found", "address_id", "no such address"),
			notFound: true, code: "customer.address_not_found", field: "address_id",
			message: "customer.address_not_found (address_id): no such address",
		},
		{name: "plain", err: errors.New("boom"), message: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.message, tt.err.Error())
			wrapped := fmt.Errorf("handling command: %w", tt.err)
			require.Equal(t, tt.rule, domain.IsRule(wrapped))
			require.Equal(t, tt.conflict, domain.IsConflict(wrapped))
			require.Equal(t, tt.notFound, domain.IsNotFound(wrapped))
			require.Equal(t, tt.code, domain.CodeOf(wrapped))
			require.Equal(t, tt.field, domain.FieldOf(wrapped))
		})
	}
}

func TestErrorsAsGivesTheFields(t *testing.T) {
	err := fmt.Errorf("x: %w", domain.NewValidationError("phone.invalid_length", "phone", "8 to 15 digits"))
	var rule *domain.RuleError
	require.ErrorAs(t, err, &rule)
	require.Equal(t, domain.RuleError{Code: "phone.invalid_length", Field: "phone", Message: "8 to 15 digits"}, *rule)
	require.Empty(t, domain.CodeOf(nil))
}

func TestPrefixField(t *testing.T) {
	inner := domain.NewValidationError("order_item.quantity_invalid", "quantity", "at least 1")
	got := domain.PrefixField(inner, "items[2]")
	require.Equal(t, "items[2].quantity", domain.FieldOf(got))
	require.Equal(t, "order_item.quantity_invalid", domain.CodeOf(got))
	require.Equal(t, "quantity", inner.Field, "the original error must not change")

	require.Equal(t, "items", domain.FieldOf(domain.PrefixField(domain.NewRuleError("c", "m"), "items")))
	require.Equal(t, "a.b", domain.FieldOf(domain.PrefixField(domain.NewNotFoundError("c", "b", "m"), "a")))
	require.True(t, domain.IsConflict(domain.PrefixField(domain.NewConflictError("c", "m"), "a")))

	plain := errors.New("boom")
	require.Same(t, plain, domain.PrefixField(plain, "x"))
}
