// Package tap stands in for github.com/mndrix/tap-go, the TAP writer that the OCI
// runtime-tools validation programs import and that Debian 12 does not package. It is
// written for stockade (not a copy of tap-go) and implements the calls the validation
// programs and runtimetest make: TAP version 13 on standard output.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is one TAP stream.
type T struct {
	n      int
	planed bool
	Writer io.Writer
	// TODO marks the following tests as TODO items (tap-go's field of that name).
	TODO bool
}

// New starts a stream on standard output.
func New() *T { return &T{Writer: os.Stdout} }

func (t *T) printf(format string, a ...interface{}) { fmt.Fprintf(t.Writer, format, a...) }

// Header prints the version line, and the plan when testCount > 0.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
		t.planed = true
	}
}

// Ok records one test result.
func (t *T) Ok(test bool, description string) {
	t.n++
	status := "ok"
	if !test {
		status = "not ok"
	}
	directive := ""
	if t.TODO {
		directive = " # TODO"
	}
	t.printf("%s %d - %s%s\n", status, t.n, description, directive)
}

// Pass records a passing test.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail records a failing test.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Skip records count skipped tests.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.n++
		t.printf("ok %d # SKIP %s\n", t.n, description)
	}
}

// Count is the number of tests recorded so far.
func (t *T) Count() int { return t.n }

// AutoPlan prints the plan from the count, when Header printed none.
func (t *T) AutoPlan() {
	if !t.planed {
		t.printf("1..%d\n", t.n)
		t.planed = true
	}
}

// Diagnostic prints a message as `#` lines.
func (t *T) Diagnostic(message string) {
	for _, line := range strings.Split(strings.TrimRight(message, "\n"), "\n") {
		t.printf("# %s\n", line)
	}
}

// Diagnosticf is Diagnostic with a format.
func (t *T) Diagnosticf(format string, a ...interface{}) { t.Diagnostic(fmt.Sprintf(format, a...)) }

// YAML prints a value as an indented YAML block (JSON is YAML).
func (t *T) YAML(message interface{}) error {
	b, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", b)
	return nil
}
