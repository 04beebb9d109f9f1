// Command op25bctl is the operator's client for op25bd's REST API
// (docs/operations.md): apply and diff policy documents, watch a rollout reach
// the switches, inspect a bridge's flows and read the audit log.
//
// Output is a human table by default and the API's JSON with -o json.
// Every failure is one line on stderr and a non-zero exit status (1 for
// errors, 2 for usage), so scripts can rely on it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/internal/clidoc"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// command is one subcommand; args are what follows its name.
type command struct {
	name    string
	usage   string
	summary string
	run     func(g *globals, args []string) error
}

var commands = []command{
	{"apply", "apply -f FILE [--dry-run] [--if-match REV]", "store a policy document (JSON or YAML); --dry-run shows the flow diff instead", runApply},
	{"diff", "diff -f FILE", "show what applying FILE would change, per item and per bridge", runDiff},
	{"get", "get config|pools|relays|destinations|services|bridges", "print the document or one collection", runGet},
	{"status", "status [--wait-revision N] [--timeout D]", "bridges, replicas and applied revisions; wait until every connected bridge applied N", runStatus},
	{"flows", "flows BRIDGE", "desired and installed flows of a bridge (dpid or name) with packet counts", runFlows},
	{"audit", "audit [--limit N] [--before REV]", "change history, newest first", runAudit},
	{"ovs", "ovs attach BRIDGE --controllers tcp:IP:PORT,... | ovs detach BRIDGE", "configure a local OVS bridge for op25b", runOVS},
}

// usageError exits with status 2 (wrong invocation, not a failed request).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if code, done := clidoc.Generate(args, docPage, stdout, stderr); done {
		return code
	}
	g := newGlobals(stdin, stdout, stderr, getenv)
	fs := g.flagSet("op25bctl")
	fs.Usage = func() { printUsage(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, errHelp) {
			printUsage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "op25bctl: %v\n", err)
		return 2
	}
	if g.version {
		fmt.Fprintln(stdout, buildinfo.Read().Line("op25bctl"))
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return 2
	}
	if rest[0] == "help" {
		printUsage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name != rest[0] {
			continue
		}
		err := c.run(g, rest[1:])
		if err == nil {
			return 0
		}
		if errors.Is(err, errHelp) {
			fmt.Fprintf(stdout, "usage: op25bctl %s\n  %s\n", c.usage, c.summary)
			return 0
		}
		fmt.Fprintf(stderr, "op25bctl %s: %v\n", c.name, oneLine(err))
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	fmt.Fprintf(stderr, "op25bctl: unknown command %q (see op25bctl help)\n", rest[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: op25bctl [--server URL] [--token TOKEN] [-o table|json] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-58s %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\n--server defaults to $OP25B_SERVER or "+defaultServer+"; --token to $OP25B_TOKEN.")
	fmt.Fprintln(w, "For an https:// server: --ca FILE (the CA of op25bd's certificate), and --cert FILE --key FILE")
	fmt.Fprintln(w, "when op25bd asks for client certificates; defaults $OP25B_CA, $OP25B_CERT, $OP25B_KEY.")
	fmt.Fprintln(w, "--version prints the version, commit and Go version.")
}
