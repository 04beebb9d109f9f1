// Command op25bctl is the operator's client for op25bd's REST API
// (docs/operations.md): lint, diff and apply policy documents, watch a
// rollout reach the switches, inspect a bridge's flows, read the history
// of changes and roll one back; for the helpdesk and the abuse desk,
// explain a packet's fate, list the sources whose direct mail was blocked,
// and exempt or quarantine a source for a while.
//
// It talks to the API through package client and links no server code: no
// etcd, no OpenFlow codec (checked by internal/archtest). lint runs
// topology's validation, the same the server runs, without a server.
//
// Output is a human table by default and JSON with -o json. Every failure
// is one line on stderr (a JSON object with -o json) and a non-zero exit
// status (1 for errors, 2 for usage), so scripts can rely on it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

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
	{"lint", "lint -f FILE", "validate a policy file offline, as the server would; every problem with its line", runLint},
	{"diff", "diff -f FILE [--exit-code] [--force]", "show what applying FILE would change, per item and per bridge", runDiff},
	{"apply", "apply -f FILE [--dry-run] [--if-match REV] [--force]", "store a policy document (JSON or YAML); --dry-run shows the flow diff instead", runApply},
	{"get", "get config|pools|relays|destinations|services|bridges|exemptions|quarantines [--revision N]", "print the document (as it is, or, with --revision, as it was at revision N) or one collection", runGet},
	{"delete", "delete KIND NAME [--if-match REV]", "remove one item (delete exemption NAME, delete quarantine NAME, any kind; a dpid for bridges)", runDelete},
	{"explain", "explain SRC DST[:PORT] --bridge DPID|NAME [--at T]", "why a packet is dropped or forwarded at a bridge: every reason, and the installed flows' verdict", runExplain},
	{"exempt", "exempt PREFIX (--for D | --until T) --reason R --ticket T [--name N]", "let SMTP from PREFIX through, whatever its pool, until it lapses by itself", runExempt},
	{"quarantine", "quarantine PREFIX (--for D | --until T) --reason R --ticket T [--name N]", "drop SMTP from PREFIX toward every destination, relays included, until it lapses by itself", runQuarantine},
	{"status", "status [--wait-revision N] [--allow-disconnected]", "bridges, replicas and applied revisions; wait until every bridge applied N", runStatus},
	{"flows", "flows BRIDGE", "desired and installed flows of a bridge (dpid or name) with packet counts", runFlows},
	{"history", "history [--limit N] [--before REV]", "changes, newest first, each item with its old and new value", runHistory},
	{"rollback", "rollback REVISION [--dry-run] [--if-match REV]", "store the document as it was at REVISION again (audited as a rollback)", runRollback},
	{"audit", "audit [--limit N] [--before REV]", "change log, one line per write, newest first", runAudit},
	{"offenders", "offenders [--since 1h] [--limit 20] [--pop P]", "sources whose SMTP attempts were blocked (or observed), most attempts first", runOffenders},
	{"ovs", "ovs attach BRIDGE --controllers tcp:IP:PORT,... | ovs detach BRIDGE", "configure a local OVS bridge for op25b", runOVS},
}

// usageError exits with status 2 (wrong invocation, not a failed request).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCodeError ends the command with a given status; with a nil err it
// prints nothing (diff --exit-code: 1 means "there are changes").
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

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
		return fail(g, "op25bctl", usagef("%v", err))
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
		return fail(g, "op25bctl "+c.name, g.withHints(err))
	}
	return fail(g, "op25bctl", usagef("unknown command %q (see op25bctl help)", rest[0]))
}

// fail prints err (one line, JSON with -o json) and returns the exit status.
func fail(g *globals, who string, err error) int {
	code := 1
	var ue *usageError
	var ec *exitCodeError
	switch {
	case errors.As(err, &ec):
		code = ec.code
		if ec.err == nil {
			return code
		}
	case errors.As(err, &ue):
		code = 2
	}
	if g.jsonOutput() {
		fmt.Fprintf(g.stderr, "%s\n", errorJSON(who, err))
	} else {
		fmt.Fprintf(g.stderr, "%s: %s\n", who, oneLine(err))
	}
	return code
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: op25bctl [--server URL] [--token TOKEN] [-o table|json] [--timeout D] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.usage, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n--server defaults to $OP25B_SERVER or "+defaultServer+" (HOST:PORT means http://HOST:PORT);")
	fmt.Fprintln(w, "--token to $OP25B_TOKEN; --timeout bounds the whole command (default 2m).")
	fmt.Fprintln(w, "For an https:// server: --ca FILE (the CA of op25bd's certificate), and --cert FILE --key FILE")
	fmt.Fprintln(w, "when op25bd asks for client certificates; defaults $OP25B_CA, $OP25B_CERT, $OP25B_KEY.")
	fmt.Fprintln(w, "--version prints the version, commit and Go version.")
}
