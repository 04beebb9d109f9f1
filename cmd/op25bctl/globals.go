package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/topology"
)

const defaultServer = "http://127.0.0.1:8080"

// defaultTimeout bounds a command when --timeout is not given: a 100k-pool
// document takes a few seconds to store and compile, so this is generous.
const defaultTimeout = 2 * time.Minute

var errHelp = flag.ErrHelp

// globals are the flags every command accepts, before or after its name.
type globals struct {
	server string
	token  string
	output string
	// timeout bounds the whole command (every request, and the wait of
	// status --wait-revision); 0 means the command's default.
	timeout time.Duration
	// HTTPS to an op25bd serving --api-tls-*: the CA that signs its
	// certificate, and this client's certificate and key when op25bd asks
	// for one (--api-tls-client-ca).
	caFile, certFile, keyFile string
	version                   bool // --version: print the build and exit
	// describe, when set, receives each command's complete FlagSet
	// instead of the command running (the man page and bash completion
	// generator, docs.go).
	describe func(*flag.FlagSet)
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	// now is the clock of exempt/quarantine --for and of "in force" in
	// tables.
	now func() time.Time

	api *client.Client // built on first use, after every flag is parsed
}

func newGlobals(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *globals {
	g := &globals{server: getenv("OP25B_SERVER"), token: getenv("OP25B_TOKEN"), output: "table",
		caFile: getenv("OP25B_CA"), certFile: getenv("OP25B_CERT"), keyFile: getenv("OP25B_KEY"),
		stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	if g.server == "" {
		g.server = defaultServer
	}
	return g
}

func (g *globals) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.server, "server", g.server, "op25bd API base URL")
	fs.StringVar(&g.token, "token", g.token, "bearer token (default $OP25B_TOKEN)")
	fs.StringVar(&g.output, "o", g.output, "output: table or json")
	fs.StringVar(&g.output, "output", g.output, "output: table or json")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "give up after this long (default 2m; status --wait-revision and ovs: 1m)")
	fs.StringVar(&g.caFile, "ca", g.caFile, "PEM file of the CA that signs op25bd's API certificate (default $OP25B_CA)")
	fs.StringVar(&g.certFile, "cert", g.certFile, "PEM client certificate for an API with --api-tls-client-ca (default $OP25B_CERT)")
	fs.StringVar(&g.keyFile, "key", g.keyFile, "PEM key of --cert (default $OP25B_KEY)")
	fs.BoolVar(&g.version, "version", false, "print the version, commit and Go version, then exit")
	return fs
}

// client returns the API client for --server, --token and the TLS files.
func (g *globals) client() (*client.Client, error) {
	if g.api != nil {
		return g.api, nil
	}
	opts := client.Options{Token: g.token}
	if g.caFile != "" || g.certFile != "" || g.keyFile != "" {
		cfg, err := client.TLSFromFiles(g.caFile, g.certFile, g.keyFile)
		if err != nil {
			return nil, usagef("--ca/--cert/--key: %v", err)
		}
		opts.TLS = cfg
	}
	c, err := client.New(g.server, opts)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	g.api = c
	return c, nil
}

// context is the command's deadline: --timeout, or def.
func (g *globals) context(def time.Duration) (context.Context, context.CancelFunc) {
	d := g.timeout
	if d <= 0 {
		d = def
	}
	return context.WithTimeout(context.Background(), d)
}

// parseInterleaved parses flags wherever they appear among positional
// arguments ("flows BRIDGE -o json" as well as "flows -o json BRIDGE").
func (g *globals) parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	if g.describe != nil {
		g.describe(fs)
		return nil, errHelp
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	if g.timeout < 0 {
		return nil, usagef("--timeout must be positive, got %s", g.timeout)
	}
	return positional, nil
}

func (g *globals) checkOutput() error {
	if g.output != "table" && g.output != "json" {
		return usagef("-o must be table or json, got %q", g.output)
	}
	return nil
}

func (g *globals) jsonOutput() bool { return g.output == "json" }

// printJSON writes v as indented JSON (-o json): the API's answer, decoded
// into the shared apitypes and encoded again.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withHints adds what an operator should do next to errors whose fix is
// not in the server's message: missing or unknown token, read-only token.
func (g *globals) withHints(err error) error {
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case 401:
		if g.token == "" {
			return fmt.Errorf("%w; op25bd wants a bearer token: pass --token TOKEN or set OP25B_TOKEN", err)
		}
		return fmt.Errorf("%w; the token given with --token or OP25B_TOKEN is not in op25bd's --api-token-file", err)
	case 403:
		return fmt.Errorf("%w; this token has role read, and the command needs a token with role write", err)
	}
	return err
}

// jsonError is how a failure is printed under -o json: the API's error
// object, plus the HTTP status (0 when no answer was involved) and the
// command, on one line.
type jsonError struct {
	Command string `json:"command"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Details any    `json:"details,omitempty"`
}

func errorJSON(command string, err error) []byte {
	je := jsonError{Command: command, Code: "error", Message: oneLine(err)}
	var ae *client.APIError
	var ue *usageError
	var verr *topology.ValidationError
	var perr *topology.ParseError
	var lerr *lintError
	switch {
	case errors.As(err, &ae):
		je.Status, je.Code, je.Field = ae.Status, ae.Code, ae.Field
		if len(ae.Details) > 0 {
			je.Details = ae.Details
		}
	case errors.As(err, &ue):
		je.Code = "usage"
	case errors.As(err, &lerr):
		je.Code = "invalid_document"
		je.Details = lerr.problems
	case errors.As(err, &verr):
		je.Code = "invalid_document"
		je.Details = verr.Errors
	case errors.As(err, &perr):
		je.Code, je.Field = "invalid_json", perr.Field
	case errors.Is(err, context.DeadlineExceeded):
		je.Code = "timeout"
	}
	out, _ := json.Marshal(map[string]jsonError{"error": je})
	return out
}

// oneLine keeps error output to a single line whatever the server sent.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
