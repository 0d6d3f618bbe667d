package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// inputProblems is what Input.UnmarshalJSON could not take. It is not part of the JSON form.
type inputProblems struct {
	// decode: the input's shape is wrong (a string where a number belongs, an array for the
	// whole input, a connection field that is an object). Validate reports only these, since
	// the rest of the input could not be read.
	decode []string
	// unknownField is the first field the input has that Input does not (a typo such as
	// "filter" would otherwise be ignored silently).
	unknownField string
}

// UnmarshalJSON decodes an input as the SDK, the Web UI or the CLI hands it over, and never
// fails: what it cannot take becomes a problem that Validate reports, so a malformed input fails
// the run at once with InvalidInput saying what to fix, instead of a generic decoding error.
// Problems name fields and JSON types, never the values given.
func (in *Input) UnmarshalJSON(b []byte) error {
	type plain Input // the same fields without this method
	var strict plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	strictErr := dec.Decode(&strict)
	if strictErr == nil {
		*in = Input(strict)
		return nil
	}
	var lenient plain
	if err := json.Unmarshal(b, &lenient); err != nil {
		*in = Input{problems: inputProblems{decode: describeDecodeError(b, err)}}
		return nil
	}
	*in = Input(lenient)
	name, found := strings.CutPrefix(strictErr.Error(), "json: unknown field ")
	if !found {
		name = "(unnamed)"
	}
	in.problems.unknownField = name
	return nil
}

// describeDecodeError turns a decoding error into problems a person can act on, without quoting
// any value of the input.
func describeDecodeError(b []byte, err error) []string {
	if problems := badFieldValues(b); len(problems) > 0 {
		return problems
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		got, _, _ := strings.Cut(typeErr.Value, " ") // "number 2.5" -> "number": no values
		if typeErr.Field == "" {
			return []string{fmt.Sprintf("the input must be a JSON object with the fields of schema/input.schema.json, not a JSON %s", got)}
		}
		return []string{fmt.Sprintf("%s must be %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type), got)}
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return []string{fmt.Sprintf("the input is not valid JSON (at byte %d): check quotes, commas and braces", syntaxErr.Offset)}
	}
	return []string{"the input could not be read as JSON: compare it with schema/input.schema.json and the files in examples/"}
}

// badFieldValues lists the connection and output credential fields whose value is not a string,
// number or boolean.
func badFieldValues(b []byte) []string {
	var shape struct {
		Connection map[string]json.RawMessage `json:"connection"`
		Output     struct {
			Credentials map[string]json.RawMessage `json:"credentials"`
		} `json:"output"`
	}
	if json.Unmarshal(b, &shape) != nil {
		return nil
	}
	var problems []string
	for where, fields := range map[string]map[string]json.RawMessage{"connection": shape.Connection, "output.credentials": shape.Output.Credentials} {
		for _, name := range sortedKeys(fields) {
			var v FieldValue
			if v.UnmarshalJSON(fields[name]) != nil {
				problems = append(problems, fmt.Sprintf("%s.%s must be a string, number or boolean, not %s", where, name, jsonValueKind(fields[name])))
			}
		}
	}
	slices.Sort(problems)
	return problems
}

// jsonKind names what a Go type takes in JSON.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	}
	return "a JSON object"
}

// jsonValueKind names the JSON type of a raw value.
func jsonValueKind(raw json.RawMessage) string {
	switch raw := bytes.TrimSpace(raw); {
	case len(raw) == 0:
		return "empty"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == 'n':
		return "null"
	}
	return "that kind of value"
}
