package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/secure-agent/secure-agent/workflows"
)

// inputProblems is invalid CLI input to run or check: an input file that cannot be read, text
// that is not one JSON object, or an input whose fields are wrong. Nothing was started. The
// problems name files, fields and JSON types, never a value of the input.
type inputProblems []string

func (p inputProblems) Error() string {
	return fmt.Sprintf("the input has %d problem(s); nothing was started", len(p))
}

// readInput reads a workflow input from path ("-": standard input). Every failure is an
// inputProblems saying what is wrong and how to fix it. Wrongly typed fields are not failures
// here: Input keeps them for StartProblems (see workflows.Input.UnmarshalJSON).
func readInput(path string) (workflows.Input, error) {
	var in workflows.Input
	name := path
	var data []byte
	var err error
	if path == "-" {
		name = "standard input"
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return in, inputProblems{fmt.Sprintf("cannot read the input file: %s; give --input the path of a readable JSON file (see examples/), or - for standard input", describeReadError(path, err))}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return in, inputProblems{fmt.Sprintf("%s is empty: the input is one JSON object such as {\"connector\": \"sqlite\", \"connection\": {...}} (see examples/)", name)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&in); err != nil {
		return in, inputProblems{fmt.Sprintf("%s is not valid JSON: %s; the input is one JSON object such as {\"connector\": \"sqlite\", \"connection\": {...}} (see examples/)", name, describeSyntaxError(data, err))}
	}
	if rest := dec.InputOffset(); len(bytes.TrimSpace(data[rest:])) > 0 {
		next := rest + int64(len(data[rest:])-len(bytes.TrimLeft(data[rest:], " \t\r\n")))
		return in, inputProblems{fmt.Sprintf("%s holds more than one JSON value: the input is exactly one JSON object; remove what follows it (from %s)", name, lineCol(data, next))}
	}
	return in, nil
}

// describeReadError says why a file cannot be read, naming the path but not repeating Go's
// "open PATH:" prefix.
func describeReadError(path string, err error) string {
	var pe *os.PathError
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("%s does not exist", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("%s is not readable by this user (permission denied)", path)
	case errors.As(err, &pe):
		return fmt.Sprintf("%s: %v", path, pe.Err) // e.g. "is a directory"
	}
	return err.Error()
}

// describeSyntaxError explains a JSON decoding error with its line and column. The JSON
// package's messages quote at most one character of the text, never a value.
func describeSyntaxError(data []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at %s", se.Error(), lineCol(data, se.Offset-1)) // Offset is just past the bad byte
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends in the middle of a value (a missing } or \"?)"
	}
	return err.Error()
}

// lineCol formats a byte offset of data as "line L, column C" (1-based).
func lineCol(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// reportInputProblems prints invalid input as run and check do: on stderr as a list, or with
// asJSON as {"error": {"type": "InvalidInput", "message": ..., "problems": [...]}} on stdout and
// nothing else there. It returns the exit code for invalid input, exitError{2}.
func reportInputProblems(command string, problems inputProblems, asJSON bool, stdout, stderr io.Writer) error {
	if asJSON {
		_ = json.NewEncoder(stdout).Encode(map[string]any{"error": map[string]any{
			"type": "InvalidInput", "message": problems.Error(), "problems": []string(problems),
		}})
		return exitError{2}
	}
	fmt.Fprintf(stderr, "secure-agent %s: %s:\n", command, problems.Error())
	for _, p := range problems {
		fmt.Fprintf(stderr, "  - %s\n", p)
	}
	return exitError{2}
}
