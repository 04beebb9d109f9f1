package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const defaultServer = "http://127.0.0.1:8080"

var errHelp = flag.ErrHelp

// globals are the flags every command accepts, before or after its name.
type globals struct {
	server string
	token  string
	output string
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
	http     *http.Client
}

func newGlobals(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *globals {
	g := &globals{server: getenv("OP25B_SERVER"), token: getenv("OP25B_TOKEN"), output: "table",
		caFile: getenv("OP25B_CA"), certFile: getenv("OP25B_CERT"), keyFile: getenv("OP25B_KEY"),
		stdin: stdin, stdout: stdout, stderr: stderr,
		// A 100k-pool document takes a few seconds to store and compile.
		http: &http.Client{Timeout: 2 * time.Minute}}
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
	fs.StringVar(&g.caFile, "ca", g.caFile, "PEM file of the CA that signs op25bd's API certificate (default $OP25B_CA)")
	fs.StringVar(&g.certFile, "cert", g.certFile, "PEM client certificate for an API with --api-tls-client-ca (default $OP25B_CERT)")
	fs.StringVar(&g.keyFile, "key", g.keyFile, "PEM key of --cert (default $OP25B_KEY)")
	fs.BoolVar(&g.version, "version", false, "print the version, commit and Go version, then exit")
	return fs
}

// useTLSFiles sets the HTTP client's TLS from --ca, --cert and --key
// (once; later calls keep it).
func (g *globals) useTLSFiles() error {
	if g.caFile == "" && g.certFile == "" && g.keyFile == "" || g.http.Transport != nil {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if g.caFile != "" {
		pem, err := os.ReadFile(g.caFile)
		if err != nil {
			return usagef("--ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return usagef("--ca %s: no PEM certificate", g.caFile)
		}
	}
	if (g.certFile == "") != (g.keyFile == "") {
		return usagef("--cert and --key go together")
	}
	if g.certFile != "" {
		c, err := tls.LoadX509KeyPair(g.certFile, g.keyFile)
		if err != nil {
			return usagef("--cert %s --key %s: %v", g.certFile, g.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	g.http.Transport = tr
	return nil
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
	if g.output != "table" && g.output != "json" {
		return nil, usagef("-o must be table or json, got %q", g.output)
	}
	return positional, nil
}

func (g *globals) jsonOutput() bool { return g.output == "json" }

// apiError is the API's error body (docs/rest-api.md).
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *apiError) Error() string {
	msg := e.Message
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d %s)", msg, e.Status, e.Code)
}

// call sends one request and decodes a 2xx JSON answer into out (raw
// receives the body verbatim for -o json). Non-2xx answers become
// *apiError with the server's code, field and message.
func (g *globals) call(method, path string, body []byte, headers map[string]string, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if err := g.useTLSFiles(); err != nil {
		return nil, err
	}
	url := strings.TrimSuffix(g.server, "/") + path
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("bad --server %q: %w", g.server, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", g.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			return nil, eb.Error
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// printRaw writes the API's JSON answer (for -o json).
func (g *globals) printRaw(raw []byte) {
	g.stdout.Write(raw)
	if !bytes.HasSuffix(raw, []byte("\n")) {
		fmt.Fprintln(g.stdout)
	}
}

// oneLine keeps error output to a single line whatever the server sent.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
