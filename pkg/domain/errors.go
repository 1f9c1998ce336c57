// Package domain holds what the Order and Customer aggregates share: the
// typed errors that tell a caller why a command or a value was refused, and
// the Event and Command interfaces both aggregates build on.
//
// The domain is pure: no I/O, no clock, no randomness. Time and identifiers
// come in as arguments, so deciding the same command on the same state always
// gives the same answer, which is what makes retries and replays safe.
package domain

import "errors"

// RuleError reports that a command or a value breaks a business rule or a
// validation rule: the request itself is wrong and retrying it unchanged will
// fail again. The HTTP layer answers 422.
type RuleError struct {
	// Code is a stable machine-readable identifier such as
	// "order.items_empty"; clients branch on it, so it never changes once
	// published.
	Code string
	// Field names the input at fault in snake_case ("email",
	// "items[2].quantity"), or is empty when no single field is to blame.
	Field string
	// Message explains the problem to a person.
	Message string
}

// Error returns the code followed by the message, so logs carry both.
func (e *RuleError) Error() string { return format(e.Code, e.Field, e.Message) }

// ConflictError reports that a command is valid in itself but clashes with
// the aggregate's current state, such as confirming a cancelled order or
// registering an id that already exists. The HTTP layer answers 409.
type ConflictError struct {
	// Code is a stable machine-readable identifier, see RuleError.Code.
	Code string
	// Field names the input at fault, or is empty.
	Field string
	// Message explains the problem to a person.
	Message string
}

// Error returns the code followed by the message.
func (e *ConflictError) Error() string { return format(e.Code, e.Field, e.Message) }

// NotFoundError reports that a command addresses an aggregate, or a part of
// one such as a customer's address, that does not exist. The HTTP layer
// answers 404.
type NotFoundError struct {
	// Code is a stable machine-readable identifier, see RuleError.Code.
	Code string
	// Field names the input that referred to the missing thing, or is empty.
	Field string
	// Message explains the problem to a person.
	Message string
}

// Error returns the code followed by the message.
func (e *NotFoundError) Error() string { return format(e.Code, e.Field, e.Message) }

func format(code, field, message string) string {
	if field == "" {
		return code + ": " + message
	}
	return code + " (" + field + "): " + message
}

// NewRuleError returns a RuleError that blames no single field.
func NewRuleError(code, message string) *RuleError {
	return &RuleError{Code: code, Message: message}
}

// NewValidationError returns a RuleError that blames one input field. Value
// constructors use it: a value that fails validation is a broken rule like
// any other, so callers need only one type to map to 422.
func NewValidationError(code, field, message string) *RuleError {
	return &RuleError{Code: code, Field: field, Message: message}
}

// NewConflictError returns a ConflictError.
func NewConflictError(code, message string) *ConflictError {
	return &ConflictError{Code: code, Message: message}
}

// NewNotFoundError returns a NotFoundError.
func NewNotFoundError(code, field, message string) *NotFoundError {
	return &NotFoundError{Code: code, Field: field, Message: message}
}

// IsRule reports whether err is or wraps a *RuleError.
func IsRule(err error) bool {
	var target *RuleError
	return errors.As(err, &target)
}

// IsConflict reports whether err is or wraps a *ConflictError.
func IsConflict(err error) bool {
	var target *ConflictError
	return errors.As(err, &target)
}

// IsNotFound reports whether err is or wraps a *NotFoundError.
func IsNotFound(err error) bool {
	var target *NotFoundError
	return errors.As(err, &target)
}

// CodeOf returns the Code of the first domain error in err's chain, or ""
// when err carries none, so a caller can log or branch without three
// errors.As calls.
func CodeOf(err error) string {
	code, _ := details(err)
	return code
}

// FieldOf returns the Field of the first domain error in err's chain, or "".
func FieldOf(err error) string {
	_, field := details(err)
	return field
}

func details(err error) (code, field string) {
	var (
		rule     *RuleError
		conflict *ConflictError
		notFound *NotFoundError
	)
	switch {
	case errors.As(err, &rule):
		return rule.Code, rule.Field
	case errors.As(err, &conflict):
		return conflict.Code, conflict.Field
	case errors.As(err, &notFound):
		return notFound.Code, notFound.Field
	}
	return "", ""
}

// PrefixField returns err with its Field placed under prefix, so an error
// from validating one element of a list reads "items[2].quantity" rather
// than "quantity". Errors that are not domain errors come back unchanged.
// The original error is copied, never modified, because value constructors
// may hand the same error to several callers.
func PrefixField(err error, prefix string) error {
	join := func(field string) string {
		if field == "" {
			return prefix
		}
		return prefix + "." + field
	}
	var (
		rule     *RuleError
		conflict *ConflictError
		notFound *NotFoundError
	)
	switch {
	case errors.As(err, &rule):
		c := *rule
		c.Field = join(c.Field)
		return &c
	case errors.As(err, &conflict):
		c := *conflict
		c.Field = join(c.Field)
		return &c
	case errors.As(err, &notFound):
		c := *notFound
		c.Field = join(c.Field)
		return &c
	}
	return err
}
