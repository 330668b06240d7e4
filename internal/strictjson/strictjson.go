// Package strictjson decodes the JSON recallq accepts from outside (the
// intake's request bodies, campaign JSON Lines, task payloads) one strict
// way, so that no door changes a value it was given.
//
// encoding/json (v1) accepts a member name twice and keeps the last value,
// matches names regardless of case, and replaces invalid UTF-8 and lone
// surrogate escapes with U+FFFD: a MsgKey holding "\xff\xfe" would be
// queued as a different MsgKey. This package uses encoding/json/v2's
// semantics (github.com/go-json-experiment/json, the module that mirrors
// the standard library's v2 and aliases it when the toolchain has it),
// whose defaults refuse all three.
package strictjson

import (
	"errors"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// What an *Error says is wrong. Test with errors.Is.
var (
	// ErrSyntax: the input is not one JSON value.
	ErrSyntax = errors.New("is not valid JSON")
	// ErrDuplicateName: an object names the same member twice.
	ErrDuplicateName = errors.New("is given twice: give each field once")
	// ErrInvalidUTF8: a string holds bytes that are not UTF-8, or an
	// escape (\ud800) that is not a character.
	ErrInvalidUTF8 = errors.New("is not valid UTF-8: pass the value exactly as it was issued")
	// ErrNotObject: the input is JSON, but not an object.
	ErrNotObject = errors.New("is not a JSON object")
	// ErrWrongType: a value has another JSON type than the one wanted.
	ErrWrongType = errors.New("has the wrong JSON type")
)

// Error is a refused input: what is wrong (Err, one of the sentinels) and
// where (Pointer, e.g. "/recalls/1/MsgKey").
type Error struct {
	Err     error
	Pointer jsontext.Pointer
	Offset  int64  // the byte offset the decoder stopped at
	Detail  string // the decoder's own words, for syntax errors
}

func (e *Error) Error() string {
	var b strings.Builder
	if f := e.Field(); f != "" {
		b.WriteString(f + ": ")
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(" (at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Detail + ")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Field is the pointer as a person reads a field's path:
// "/recalls/1/MsgKey" is "recalls[1].MsgKey"; "" for the whole input.
func (e *Error) Field() string {
	var b strings.Builder
	for tok := range e.Pointer.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// Object parses b as one JSON object and returns its members, their values
// raw (and already checked: a value's nested objects name no member twice
// and every string in it is valid UTF-8). Errors are *Error.
func Object(b []byte) (map[string]jsontext.Value, error) {
	var obj map[string]jsontext.Value
	if err := Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	if obj == nil { // JSON null
		return nil, &Error{Err: ErrNotObject}
	}
	return obj, nil
}

// Array parses v as a JSON array of raw values. Errors are *Error.
func Array(v jsontext.Value) ([]jsontext.Value, error) {
	var a []jsontext.Value
	if err := Unmarshal(v, &a); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, &Error{Err: ErrWrongType}
	}
	return a, nil
}

// String decodes v as a JSON string. Any other JSON type is an error
// wrapping ErrWrongType that says which type it got.
func String(v jsontext.Value) (string, error) {
	if v.Kind() != '"' {
		return "", wrongType(v.Kind())
	}
	var s string
	if err := Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Unmarshal decodes the single JSON value b into v with encoding/json/v2's
// strict defaults: member names match exactly (case-sensitive), a name
// given twice, invalid UTF-8 and trailing data are errors; unknown members
// are ignored. Errors are *Error.
func Unmarshal(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	return classify(b, v, err)
}

// Miscased returns the name of known that name spells with other letter
// case ("from_account" for "From_Account"), or "" when there is none. A
// caller refuses such a name: names are matched exactly.
func Miscased(name string, known []string) string {
	for _, k := range known {
		if k != name && strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

func classify(b []byte, v any, err error) error {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return &Error{Err: ErrDuplicateName, Pointer: syn.JSONPointer, Offset: syn.ByteOffset}
	case errors.As(err, &syn):
		// jsontext does not export its invalid-UTF-8 error, so decode again
		// allowing invalid UTF-8: if that gets further, this was the error.
		if again := json.Unmarshal(b, v, jsontext.AllowInvalidUTF8(true)); offset(again) > syn.ByteOffset {
			return &Error{Err: ErrInvalidUTF8, Pointer: syn.JSONPointer, Offset: syn.ByteOffset}
		}
		return &Error{Err: ErrSyntax, Pointer: syn.JSONPointer, Offset: syn.ByteOffset, Detail: syn.Err.Error()}
	case errors.As(err, &sem) && sem.JSONPointer == "" && sem.JSONKind != '{':
		if _, isMap := v.(*map[string]jsontext.Value); isMap {
			return &Error{Err: ErrNotObject, Offset: sem.ByteOffset}
		}
		return &Error{Err: wrongType(sem.JSONKind), Offset: sem.ByteOffset}
	case errors.As(err, &sem):
		return &Error{Err: wrongType(sem.JSONKind), Pointer: sem.JSONPointer, Offset: sem.ByteOffset}
	}
	return &Error{Err: ErrSyntax, Detail: err.Error()}
}

// offset is how far a decode got: the error's byte offset, or past the
// end when it succeeded.
func offset(err error) int64 {
	if err == nil {
		return 1 << 62
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return syn.ByteOffset
	}
	var sem *json.SemanticError
	if errors.As(err, &sem) {
		return sem.ByteOffset
	}
	return -1
}

func wrongType(k jsontext.Kind) error {
	return &typeError{got: kindName(k)}
}

type typeError struct{ got string }

func (e *typeError) Error() string        { return "want a string, got a JSON " + e.got }
func (e *typeError) Is(target error) bool { return target == ErrWrongType }

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}
