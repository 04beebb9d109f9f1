// Package clidoc renders a command's man page and bash completion from its
// real flag definitions — the same *flag.FlagSet it parses — so what the
// Debian package installs cannot drift from --help. Both binaries expose
// it through a hidden first argument:
//
//	op25bd __doc man              > op25bd.8
//	op25bctl __doc bash-completion > op25bctl
//
// (packaging/deb/build.sh runs exactly that).
package clidoc

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"
)

// Page describes one command.
type Page struct {
	Name        string        // "op25bd"
	Section     string        // man section: "8" for the daemon, "1" for the CLI
	Summary     string        // the NAME line: "op25b OpenFlow controller ..."
	Version     string        // shown in the page footer
	Synopsis    []string      // lines after the name: "[flags]", "[flags] COMMAND [ARGS]"
	Description []string      // paragraphs
	Flags       *flag.FlagSet // the command's (global) flags
	// FlagEnv names the environment variable that also sets a flag; nil
	// when flags have none.
	FlagEnv func(flagName string) string
	// Values are the words a flag's value completes to (--log-level:
	// debug info warn error). Flags whose placeholder is `file` or
	// `directory`, or listed in Files, complete file names.
	Values   map[string][]string
	Files    map[string]bool
	Commands []Command
	Sections []Section // after OPTIONS (and COMMANDS): ENVIRONMENT, FILES, ...
}

// Command is a subcommand (op25bctl apply ...).
type Command struct {
	Name    string
	Usage   string        // "apply -f FILE [--dry-run]"
	Summary string        // one line
	Args    []string      // words the first argument completes to ("config", "pools")
	Flags   *flag.FlagSet // its flags; those also in Page.Flags are the global ones
}

// Section is a titled man page section of plain paragraphs.
type Section struct {
	Title      string
	Paragraphs []string
}

// Generate handles the hidden `__doc man|bash-completion` arguments: it
// writes the page to stdout and reports handled=true with the exit code.
// Any other arguments are not its business (handled=false).
func Generate(args []string, page func() Page, stdout, stderr io.Writer) (code int, handled bool) {
	if len(args) == 0 || args[0] != "__doc" {
		return 0, false
	}
	if len(args) != 2 {
		fmt.Fprintln(stderr, "usage: __doc man|bash-completion")
		return 2, true
	}
	var err error
	switch args[1] {
	case "man":
		err = WriteMan(stdout, page(), manDate())
	case "bash-completion":
		err = WriteBashCompletion(stdout, page())
	default:
		fmt.Fprintf(stderr, "__doc: unknown format %q (man or bash-completion)\n", args[1])
		return 2, true
	}
	if err != nil {
		fmt.Fprintf(stderr, "__doc %s: %v\n", args[1], err)
		return 1, true
	}
	return 0, true
}

// manDate is SOURCE_DATE_EPOCH's day when set (reproducible packages),
// else today.
func manDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// flagInfo is one flag as the page shows it.
type flagInfo struct {
	name, placeholder, usage, def string
	isBool                        bool
}

// flagsOf lists fs's flags but those also in skip (a command's copy of the
// global flags); flags in files take a `file` whatever their usage says.
func flagsOf(fs *flag.FlagSet, skip *flag.FlagSet, files map[string]bool) []flagInfo {
	var out []flagInfo
	if fs == nil {
		return nil
	}
	fs.VisitAll(func(f *flag.Flag) {
		if skip != nil && skip.Lookup(f.Name) != nil {
			return
		}
		placeholder, usage := flag.UnquoteUsage(f)
		fi := flagInfo{name: f.Name, placeholder: placeholder, usage: usage, def: f.DefValue}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			fi.isBool, fi.placeholder = true, ""
		} else if files[f.Name] {
			fi.placeholder = "file"
		}
		switch fi.def {
		case "", "0", "false", "0s":
			fi.def = ""
		}
		out = append(out, fi)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// dashes is how a flag is written: --name, or -x for one letter.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}
