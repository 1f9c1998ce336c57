package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
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
//   - 400 unknown-field (Field set): a field v does not have;
//   - 400 invalid-type (Field set): a value of the wrong JSON type, or a
//     body that is not an object;
//   - 400 invalid-value: a value a field's UnmarshalJSON refused, or a plain
//     error from Validate;
//   - 400 unreadable-body: the body could not be read (client gone, timeout);
//   - a *ProblemError returned by UnmarshalJSON or Validate, as it is.
//
// Field names match case-insensitively, as encoding/json does.
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
func decodeStrict(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	if len(trimmed) == 0 {
		return emptyBody()
	}
	// encoding/json decodes null into a struct as a no-op, which would pass
	// an empty command on to Validate looking like a request with every
	// field missing; say what is wrong instead.
	if wantsObject(v) && trimmed[0] != '{' && json.Valid(body) {
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("the request body must be a JSON object, got %s", jsonKind(trimmed[0])))
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err, len(body))
	}
	off := dec.InputOffset()
	if len(bytes.TrimLeft(body[off:], jsonSpace)) > 0 {
		return malformed(fmt.Sprintf("unexpected data after the JSON object at byte offset %d", off))
	}
	return nil
}

// decodeProblem turns an encoding/json error into the problem to answer.
func decodeProblem(err error, size int) *ProblemError {
	if pe, ok := errors.AsType[*ProblemError](err); ok {
		return pe
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return malformed(fmt.Sprintf("malformed JSON at byte offset %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: ")))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed(fmt.Sprintf("malformed JSON at byte offset %d: the body ends inside a value", size))
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
				fmt.Sprintf("the request body must be a JSON object, got %s", te.Value))
		}
		return NewProblem(http.StatusBadRequest, "invalid-type", "Invalid type",
			fmt.Sprintf("field %q must be %s, got %s", te.Field, expectedKind(te.Type), te.Value)).WithField(te.Field)
	}
	// DisallowUnknownFields reports the name only in the message
	// (`json: unknown field "x"`); there is no typed error to read it from.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(rest)
		if uerr != nil {
			name = rest
		}
		return NewProblem(http.StatusBadRequest, "unknown-field", "Unknown field",
			fmt.Sprintf("field %q is not part of this request", name)).WithField(name)
	}
	if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		// The handler passed a non-pointer: a bug on our side, not the
		// client's.
		return &ProblemError{Problem: internalProblem()}
	}
	// What is left comes from a field's UnmarshalJSON, such as a time that
	// does not parse: the message is about the client's own value.
	return NewProblem(http.StatusBadRequest, "invalid-value", "Invalid value",
		fmt.Sprintf("a value in the request body is invalid: %s", strings.TrimPrefix(err.Error(), "json: ")))
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
