package value_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/domain"
	"github.com/orderstream/orderstream/pkg/domain/value"
)

// requireRule asserts that err is a *domain.RuleError with the given code
// and field, which is what every value constructor returns on bad input.
func requireRule(t *testing.T, err error, code, field string) {
	t.Helper()
	var rule *domain.RuleError
	require.ErrorAs(t, err, &rule)
	require.Equal(t, code, rule.Code)
	require.Equal(t, field, rule.Field)
	require.NotEmpty(t, rule.Message)
}

func currency(t testing.TB, code string) value.Currency {
	t.Helper()
	c, err := value.NewCurrency(code)
	require.NoError(t, err)
	return c
}

func money(t testing.TB, minor int64, code string) value.Money {
	t.Helper()
	m, err := value.NewMoney(minor, currency(t, code))
	require.NoError(t, err)
	return m
}
