package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DefaultMaxBodyBytes bounds a request body when no limit is given.
const DefaultMaxBodyBytes int64 = 1 << 20

// jsonSpace is the whitespace RFC 8259 allows between tokens; unlike
// bytes.TrimSpace it excludes Unicode spaces, which are malformed JSON.
const jsonSpace = " \t\r\n"

// DecodeJSON reads the request body strictly into v, a pointer to a struct,
// and then runs v's Validate method if it has one. Every error it returns is
// a *ProblemError for WriteError:
//
//   - 415 unsupported-media-type: Content-Type is not application/json (a
//     charset parameter other than utf-8 counts as not), or the body has a
//     Content-Encoding;
//   - 413 payload-too-large: the body is longer than limit bytes (limit <= 0
//     means DefaultMaxBodyBytes);
//   - 400 malformed-json: empty body, bad syntax (with the byte offset), or
//     data after the object;
//   - 400 invalid-utf8 (Field set): text that is not UTF-8, or a \u escape
//     of an unpaired surrogate, anywhere in the body;
//   - 400 duplicate-field (Field set): a key sent twice in one object, in
//     the same or another case;
//   - 400 unknown-field (Field set): a field v does not have;
//   - 400 invalid-type (Field set): a value of the wrong JSON type, or a
//     body that is not an object;
//   - 400 invalid-value: a value a field's own parsing refused (Field set),
//     or a plain error from Validate;
//   - 400 unreadable-body: the body could not be read (client gone, timeout);
//   - a *ProblemError returned by UnmarshalJSON or Validate, as it is.
//
// Keys are case-sensitive. Field names in problems use the form
// "items[0].quantity". Every problem carries a code equal to its slug.
func DecodeJSON(r *http.Request, w http.ResponseWriter, limit int64, v any) error {
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	if err := checkContentType(r.Header); err != nil {
		return err
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return emptyBody()
	}
	// MaxBytesReader, unlike io.LimitReader, also tells the server to close
	// the connection, so an oversized body is not read to its end.
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge(limit)
		}
		return NewProblem(http.StatusBadRequest, "unreadable-body", "Unreadable body",
			"the request body could not be read")
	}
	if err := decodeStrict(body, v); err != nil {
		return err
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			if pe, ok := errors.AsType[*ProblemError](err); ok {
				return pe
			}
			// A plain error from Validate is a message about the request,
			// written for the client.
			return NewProblem(http.StatusBadRequest, "invalid-value", "Invalid value", err.Error())
		}
	}
	return nil
}

func checkContentType(h http.Header) error {
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("the request body must be application/json, got Content-Type %q", ct))
	}
	// JSON is UTF-8 (RFC 8259 §8.1); a body declared otherwise would be
	// misread rather than refused.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("the request body must be UTF-8, got charset %q", cs))
	}
	// net/http does not decompress request bodies; gzip bytes would surface
	// as a baffling syntax error.
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("Content-Encoding %q is not supported; send the body uncompressed", ce))
	}
	return nil
}

func tooLarge(limit int64) *ProblemError {
	return NewProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large",
		fmt.Sprintf("the request body is larger than %d bytes", limit))
}

func emptyBody() *ProblemError {
	return malformed("the request body is empty")
}

func malformed(detail string) *ProblemError {
	return NewProblem(http.StatusBadRequest, "malformed-json", "Malformed JSON", detail)
}

// decodeStrict decodes the whole of body, one JSON value, into v.
//
// It decodes with encoding/json/v2 semantics (github.com/go-json-experiment/json)
// because encoding/json cannot be made exact: it matches keys
// case-insensitively, keeps the last of duplicate keys, and replaces
// invalid UTF-8 and lone surrogates with U+FFFD, so that what is stored is
// not what the client sent. Here all of those are refused, naming the field.
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) == 0 {
		return emptyBody()
	}
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		// The handler passed a non-pointer: a bug on our side, not the
		// client's.
		return &ProblemError{Problem: internalProblem()}
	}
	if err := checkNames(body); err != nil {
		return err
	}
	// A null body decodes into a struct as a no-op, which would pass an
	// empty command on to Validate looking like a request with every field
	// missing; say what is wrong instead.
	if wantsObject(v) && trimmed[0] != '{' && jsontext.Value(body).IsValid() {
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("the request body must be a JSON object, got %s", jsonKind(trimmed[0])))
	}
	if err := json.Unmarshal(body, v, json.RejectUnknownMembers(true), json.WithUnmarshalers(integers)); err != nil {
		return decodeProblem(err, int64(len(body)))
	}
	return nil
}

// checkNames refuses an object with two keys that differ only in case
// (keys are case-sensitive, so one of them would be an unknown field for a
// struct and an ambiguity for a map). Exact duplicates, bad syntax and bad
// UTF-8 are left to Unmarshal, which reports them with their position.
func checkNames(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true))
	// seen holds, for each open object, the keys read so far folded to
	// lower case; nil entries stand for arrays.
	var seen []map[string]bool
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil // io.EOF, or an error Unmarshal reports better
		}
		switch tok.Kind() {
		case '{':
			seen = append(seen, map[string]bool{})
			continue
		case '[':
			seen = append(seen, nil)
			continue
		case '}', ']':
			seen = seen[:len(seen)-1]
			continue
		}
		depth := len(seen)
		if depth == 0 || seen[depth-1] == nil || dec.StackDepth() != depth {
			continue
		}
		if _, n := dec.StackIndex(depth); n%2 == 0 {
			continue // a value, not a name
		}
		folded := strings.ToLower(tok.String())
		if seen[depth-1][folded] {
			field := fieldPath(dec.StackPointer())
			return NewProblem(http.StatusBadRequest, "duplicate-field", "Duplicate field",
				fmt.Sprintf("field %q is sent more than once (keys are case-sensitive and may appear once, in any case)", field)).WithField(field)
		}
		seen[depth-1][folded] = true
	}
}

// decodeProblem turns a decoding error into the problem to answer.
func decodeProblem(err error, size int64) *ProblemError {
	if pe, ok := errors.AsType[*ProblemError](err); ok {
		return pe
	}
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		return syntaxProblem(se, size)
	}
	se, ok := errors.AsType[*json.SemanticError](err)
	if !ok {
		return &ProblemError{Problem: internalProblem()}
	}
	field := fieldPath(se.JSONPointer)
	switch {
	case errors.As(se.Err, new(*notIntegerError)):
		ni, _ := errors.AsType[*notIntegerError](se.Err)
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("field %q must be %s, got number %s", field, expectedKind(se.GoType), ni.value)).WithField(field)
	case errors.Is(se.Err, json.ErrUnknownName):
		return NewProblem(http.StatusBadRequest, "unknown-field", "Unknown field",
			fmt.Sprintf("field %q is not part of this request (keys are case-sensitive)", field)).WithField(field)
	case field == "":
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("the request body must be a JSON object, got %s", kindName(se.JSONKind, se.JSONValue)))
	case se.Err == nil || (se.JSONKind == '0' && isNumber(se.GoType)):
		// A value of another JSON kind, or a number the field's type cannot
		// hold (a fraction or a negative for an integer, an overflow).
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("field %q must be %s, got %s", field, expectedKind(se.GoType), kindName(se.JSONKind, se.JSONValue))).WithField(field)
	default:
		// What is left comes from a field's own parsing, such as a time
		// that does not parse: the message is about the client's value.
		return NewProblem(http.StatusBadRequest, "invalid-value", "Invalid value",
			fmt.Sprintf("field %q is invalid: %v", field, se.Err)).WithField(field)
	}
}

// syntaxProblem answers a body that is not well-formed JSON, or not text.
func syntaxProblem(se *jsontext.SyntacticError, size int64) *ProblemError {
	field := fieldPath(se.JSONPointer)
	msg := se.Err.Error()
	switch {
	case errors.Is(se.Err, jsontext.ErrDuplicateName):
		return NewProblem(http.StatusBadRequest, "duplicate-field", "Duplicate field",
			fmt.Sprintf("field %q is sent more than once (keys are case-sensitive and may appear once, in any case)", field)).WithField(field)
	case strings.Contains(msg, "invalid UTF-8"), strings.Contains(msg, "surrogate"):
		// JSON text is Unicode (RFC 8259 §8.1): invalid bytes, and \u
		// escapes of half a surrogate pair, name no character at all.
		where := "the request body"
		if field != "" {
			where = fmt.Sprintf("field %q", field)
		}
		return NewProblem(http.StatusBadRequest, "invalid-utf8", "Invalid text",
			fmt.Sprintf("%s is not valid UTF-8 at byte offset %d (invalid bytes or an unpaired \\u surrogate escape)", where, se.ByteOffset)).WithField(field)
	case errors.Is(se.Err, io.ErrUnexpectedEOF):
		return malformed(fmt.Sprintf("malformed JSON at byte offset %d: the body ends inside a value", size))
	case strings.Contains(msg, "after top-level value"):
		return malformed(fmt.Sprintf("unexpected data after the JSON object at byte offset %d", se.ByteOffset))
	default:
		return malformed(fmt.Sprintf("malformed JSON at byte offset %d: %s", se.ByteOffset, msg))
	}
}

// fieldPath writes a JSON pointer as the field names problems use:
// "/items/0/quantity" becomes "items[0].quantity".
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" && b.Len() > 0 {
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// kindName names the JSON value a client sent.
func kindName(k jsontext.Kind, v jsontext.Value) string {
	switch k {
	case '"':
		return "string"
	case '0':
		if len(v) > 0 && len(v) <= 32 {
			return "number " + string(v)
		}
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	default:
		return "another type"
	}
}

func isNumber(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// wantsObject tells whether v decodes from a JSON object only.
func wantsObject(v any) bool {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return false
	}
	k := t.Elem().Kind()
	return k == reflect.Struct || k == reflect.Map
}

// jsonKind names the JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// expectedKind names the JSON a Go type decodes from, for client messages
// that should not speak Go.
func expectedKind(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a " + t.String()
	}
}

// integers decode a JSON number into a Go integer when its value is an
// integer in range, whatever its notation: JSON Schema (and so
// openapi.json) calls 3.0 and 3e2 integers, while encoding/json refuses
// them. A fraction, or a value out of the type's range, is refused.
var integers = json.JoinUnmarshalers(
	json.UnmarshalFromFunc(integral[int]), json.UnmarshalFromFunc(integral[int8]),
	json.UnmarshalFromFunc(integral[int16]), json.UnmarshalFromFunc(integral[int32]),
	json.UnmarshalFromFunc(integral[int64]), json.UnmarshalFromFunc(integral[uint]),
	json.UnmarshalFromFunc(integral[uint8]), json.UnmarshalFromFunc(integral[uint16]),
	json.UnmarshalFromFunc(integral[uint32]), json.UnmarshalFromFunc(integral[uint64]),
)

// notIntegerError is a number that is no integer of the field's type.
type notIntegerError struct{ value string }

func (e *notIntegerError) Error() string { return "number " + e.value + " is not an integer in range" }

// maxExponent bounds the exponent of a number read as an integer, so that
// 1e999999999 is refused at once instead of being expanded.
const maxExponent = 40

func integral[T int | int8 | int16 | int32 | int64 | uint | uint8 | uint16 | uint32 | uint64](dec *jsontext.Decoder, v *T) error {
	if dec.PeekKind() != '0' {
		return errors.ErrUnsupported // not a number: the default reports the type
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	lit := string(raw)
	if len(lit) > 64 {
		return &notIntegerError{value: lit[:20] + "…"}
	}
	bad := &notIntegerError{value: lit}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return bad
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok || !r.IsInt() {
		return bad
	}
	n := r.Num()
	var zero T
	bits := int(reflect.TypeOf(zero).Size()) * 8
	if signed := ^zero < 0; signed {
		if n.BitLen() > bits-1 && !(n.Sign() < 0 && n.BitLen() == bits && n.TrailingZeroBits() == uint(bits-1)) {
			return bad
		}
		*v = T(n.Int64())
		return nil
	}
	if n.Sign() < 0 || n.BitLen() > bits {
		return bad
	}
	*v = T(n.Uint64())
	return nil
}
