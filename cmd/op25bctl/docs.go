package main

import (
	"flag"
	"io"
	"strings"

	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/internal/clidoc"
)

// docPage describes op25bctl for its man page and bash completion
// (`op25bctl __doc man|bash-completion`), reading every command's flags
// from the FlagSet the command itself builds: each command is run with
// globals.describe set, which hands over the FlagSet instead of parsing.
func docPage() clidoc.Page {
	g := newGlobals(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	var described []clidoc.Command
	for _, c := range commands {
		var fs *flag.FlagSet
		g.describe = func(f *flag.FlagSet) { fs = f }
		args := []string(nil)
		if c.name == "ovs" {
			args = []string{"attach", "BRIDGE"} // ovs checks its verb before building flags
		}
		_ = c.run(g, args)
		described = append(described, clidoc.Command{
			Name: c.name, Usage: c.usage, Summary: c.summary, Args: firstArgs(c.name, c.usage), Flags: fs,
		})
	}
	return clidoc.Page{
		Name:     "op25bctl",
		Section:  "1",
		Summary:  "client for the op25b controller's REST API",
		Version:  buildinfo.Read().Version,
		Synopsis: []string{"[--server URL] [--token TOKEN] [-o table|json] COMMAND [ARGS]"},
		Description: []string{
			"op25bctl talks to any op25bd replica's REST API: it applies and diffs policy documents (JSON or YAML), " +
				"waits until a change is applied on every connected bridge, shows a bridge's desired and installed flows " +
				"and reads the audit log. For the helpdesk and the abuse desk it explains why a packet is dropped or forwarded " +
				"at a bridge, and exempts or quarantines a source prefix until an instant. Run on an Open vSwitch host, ovs attach and ovs detach point a bridge at the " +
				"op25bd replicas.",
			"Global flags go before or after the command. Output is a human table by default, the API's JSON with -o json.",
		},
		Flags:    newGlobals(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" }).flagSet("op25bctl"),
		Values:   map[string][]string{"o": {"table", "json"}, "output": {"table", "json"}},
		Files:    map[string]bool{"f": true, "ca": true, "cert": true, "key": true},
		Commands: described,
		Sections: []clidoc.Section{
			{Title: "Environment", Paragraphs: []string{
				"OP25B_SERVER, OP25B_TOKEN, OP25B_CA, OP25B_CERT and OP25B_KEY are the defaults of --server, --token, " +
					"--ca, --cert and --key.",
			}},
			{Title: "Exit status", Paragraphs: []string{
				"0 on success, 1 when a request or a check fails, 2 for a wrong invocation. Every failure is one line on stderr.",
			}},
			{Title: "See also", Paragraphs: []string{
				"op25bd(8); /usr/share/doc/op25b/ (docs/rest-api.md, docs/policy-document.md, docs/operations.md).",
			}},
		},
	}
}

// firstArgs are the words a command's first argument can be, read from its
// usage: "get config|pools|..." and "ovs attach ... | ovs detach ...".
func firstArgs(name, usage string) []string {
	var out []string
	fields := strings.Fields(usage)
	for i := 0; i+1 < len(fields); i++ {
		if fields[i] != name {
			continue
		}
		w := fields[i+1]
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") || strings.ToUpper(w) == w {
			continue
		}
		out = append(out, strings.Split(w, "|")...)
	}
	return out
}
