// Package client is a small Go client for op25b's REST API (v1): what
// op25bctl uses, and what an ISP's own automation can import without
// linking etcd or any server code.
//
//	c, err := client.New("127.0.0.1:8080", client.Options{Token: os.Getenv("OP25B_TOKEN")})
//	cfg, err := c.Config(ctx)                       // document + revision
//	cfg.Pools = append(cfg.Pools, pool)
//	rev, err := c.Apply(ctx, cfg.Document, cfg.Revision) // 409 if someone wrote since
//
// Every call takes a context: its deadline is the request's timeout. A
// non-2xx answer is an *APIError carrying the server's error code (see the
// apitypes.Code* constants); failing to reach the server is any other error.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/topology"
)

// Options configure a Client.
type Options struct {
	// Token is the bearer token (a line of op25bd's --api-token-file).
	Token string
	// TLS is used for https:// servers (see TLSFromFiles); nil means the
	// system roots and no client certificate.
	TLS *tls.Config
	// HTTPClient replaces the default client (TLS is then ignored).
	HTTPClient *http.Client
}

// Client talks to one op25bd replica. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client for server, given as a URL (http://127.0.0.1:8080,
// https://op25b.example.net:8443) or as HOST:PORT, which means http.
func New(server string, opts Options) (*Client, error) {
	base, err := ParseServer(server)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS
		}
		// No client-wide timeout: the caller's context bounds each call.
		hc = &http.Client{Transport: tr}
	}
	return &Client{base: base, token: opts.Token, http: hc}, nil
}

// Server is the base URL requests go to.
func (c *Client) Server() string { return c.base.String() }

// ParseServer turns what an operator types into the API's base URL:
// "127.0.0.1:8080", "localhost:8080", "[::1]:8080" and "op25b-1" (port 80)
// mean http://; a URL must be http:// or https:// with a host, and may carry
// a path prefix (behind a reverse proxy) but no query or fragment.
func ParseServer(s string) (*url.URL, error) {
	const want = "want http://HOST:PORT, https://HOST:PORT or HOST:PORT"
	raw := strings.TrimSpace(s)
	if raw == "" {
		return nil, fmt.Errorf("empty server address; %s", want)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server address %q is not a URL; %s", s, want)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("server address %q: scheme %q is not supported; %s", s, u.Scheme, want)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("server address %q has no host; %s", s, want)
	case u.User != nil:
		return nil, fmt.Errorf("server address %q: credentials do not go in the URL; use a bearer token", s)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("server address %q: a query or fragment makes no sense here; %s", s, want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("server address %q: port %q is not a number in 1..65535", s, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("server address %q: empty port", s)
	}
	if ip := net.ParseIP(strings.Trim(u.Hostname(), "[]")); ip == nil && strings.ContainsAny(u.Hostname(), " /\\") {
		return nil, fmt.Errorf("server address %q: bad host", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// TLSFromFiles builds the TLS configuration of an https:// client: caFile
// is the CA that signs op25bd's API certificate ("" = system roots);
// certFile and keyFile, both or neither, are this client's certificate for
// an op25bd that asks for one (--api-tls-client-ca).
func TLSFromFiles(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate and its key go together")
	}
	if certFile != "" {
		crt, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{crt}
	}
	return cfg, nil
}

// APIError is a non-2xx answer of the API.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code, Message, Field and Details are the server's error object.
	Code    string
	Message string
	Field   string
	Details []apitypes.FieldIssue
}

func (e *APIError) Error() string {
	msg := e.Message
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d %s)", msg, e.Status, e.Code)
}

// ErrorCode returns the API error code of err ("revision_conflict", ...),
// or "" when err is not an answer of the API.
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// Do sends one request: body (when not nil) is sent as JSON, a 2xx JSON
// answer is decoded into out (when not nil). It returns the answer's body.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any, header http.Header, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: no answer from %s in time: %w", method, path, c.base, ctx.Err())
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb apitypes.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil {
			e := eb.Error
			return nil, &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message, Field: e.Field, Details: e.Details}
		}
		return nil, &APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode),
			Message: fmt.Sprintf("%s %s: %s", method, path, firstLine(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return raw, nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func ifMatch(rev int64) http.Header {
	if rev <= 0 {
		return nil
	}
	return http.Header{"If-Match": []string{strconv.FormatInt(rev, 10)}}
}

// Config returns the whole document and its revision.
func (c *Client) Config(ctx context.Context) (*apitypes.Config, error) {
	var out apitypes.Config
	_, err := c.Do(ctx, http.MethodGet, "/v1/config", nil, nil, nil, &out)
	return &out, err
}

// ConfigAt returns the document as it was at revision rev (its Revision is
// that of the write in effect at rev). A revision older than the server
// keeps is an APIError with code not_found whose message names the oldest
// revision still available.
func (c *Client) ConfigAt(ctx context.Context, rev int64) (*apitypes.Config, error) {
	var out apitypes.Config
	_, err := c.Do(ctx, http.MethodGet, "/v1/config", url.Values{"revision": {strconv.FormatInt(rev, 10)}}, nil, nil, &out)
	return &out, err
}

// Apply replaces the whole document. ifMatch, when not 0, is the revision
// the change is based on: the write fails with revision_conflict (409) if
// the stored document moved on since.
func (c *Client) Apply(ctx context.Context, doc *topology.Document, ifMatchRev int64) (int64, error) {
	var out apitypes.WriteResult
	_, err := c.Do(ctx, http.MethodPut, "/v1/config", nil, doc, ifMatch(ifMatchRev), &out)
	return out.Revision, err
}

// DryRun validates doc and returns what applying it would change, per item
// and per bridge, storing nothing.
func (c *Client) DryRun(ctx context.Context, doc *topology.Document, ifMatchRev int64) (*apitypes.DryRun, error) {
	var out apitypes.DryRun
	_, err := c.Do(ctx, http.MethodPut, "/v1/config", url.Values{"dry_run": {"true"}}, doc, ifMatch(ifMatchRev), &out)
	return &out, err
}

// Rollback stores the document as it was at revision rev, on condition
// that the current revision is still ifMatchRev (required, > 0). It
// returns the new revision; the audit log records it as a rollback.
func (c *Client) Rollback(ctx context.Context, rev, ifMatchRev int64) (int64, error) {
	if ifMatchRev <= 0 {
		return 0, errors.New("rollback needs the current revision (If-Match)")
	}
	var out apitypes.WriteResult
	_, err := c.Do(ctx, http.MethodPost, "/v1/config/rollback", nil, apitypes.Rollback{Revision: rev}, ifMatch(ifMatchRev), &out)
	return out.Revision, err
}

// Collection returns one list of the document: kind is pools, relays,
// destinations, services, bridges, exemptions or quarantines.
func (c *Client) Collection(ctx context.Context, kind string) (*apitypes.Collection, error) {
	var out apitypes.Collection
	_, err := c.Do(ctx, http.MethodGet, "/v1/"+url.PathEscape(kind), nil, nil, nil, &out)
	return &out, err
}

// PutItem creates or replaces one item (a topology.Pool, Relay, ...) of
// kind under key (its name, or dpid for bridges).
func (c *Client) PutItem(ctx context.Context, kind, key string, item any, ifMatchRev int64) (int64, error) {
	var out apitypes.WriteResult
	_, err := c.Do(ctx, http.MethodPut, "/v1/"+url.PathEscape(kind)+"/"+url.PathEscape(key), nil, item, ifMatch(ifMatchRev), &out)
	return out.Revision, err
}

// DeleteItem removes one item; deleting an item still referenced is a
// referenced (409) error.
func (c *Client) DeleteItem(ctx context.Context, kind, key string, ifMatchRev int64) (int64, error) {
	var out apitypes.WriteResult
	_, err := c.Do(ctx, http.MethodDelete, "/v1/"+url.PathEscape(kind)+"/"+url.PathEscape(key), nil, nil, ifMatch(ifMatchRev), &out)
	return out.Revision, err
}

// Status returns the cluster-wide rollout status.
func (c *Client) Status(ctx context.Context) (*apitypes.Status, error) {
	var out apitypes.Status
	_, err := c.Do(ctx, http.MethodGet, "/v1/status", nil, nil, nil, &out)
	return &out, err
}

// OffendersQuery selects GET /v1/offenders: the window (0: the server's
// default, 1h), at most Limit sources (0: the server's default, 100), and
// optionally one pop.
type OffendersQuery struct {
	Since time.Duration
	Limit int
	Pop   string
}

// Offenders returns the sources with blocked (or observed) SMTP attempts
// in the window, most attempts first.
func (c *Client) Offenders(ctx context.Context, q OffendersQuery) (*apitypes.Offenders, error) {
	v := url.Values{}
	if q.Since > 0 {
		v.Set("since", q.Since.String())
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Pop != "" {
		v.Set("pop", q.Pop)
	}
	var out apitypes.Offenders
	_, err := c.Do(ctx, http.MethodGet, "/v1/offenders", v, nil, nil, &out)
	return &out, err
}

// Flows returns the desired and installed flows of one bridge.
func (c *Client) Flows(ctx context.Context, dpid topology.DPID) (*apitypes.Flows, error) {
	var out apitypes.Flows
	_, err := c.Do(ctx, http.MethodGet, "/v1/bridges/"+url.PathEscape(string(dpid))+"/flows", nil, nil, nil, &out)
	return &out, err
}

// Audit returns up to limit audit records older than revision before (0:
// the newest), newest first.
func (c *Client) Audit(ctx context.Context, limit int, before int64) (*apitypes.Audit, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	var out apitypes.Audit
	_, err := c.Do(ctx, http.MethodGet, "/v1/audit", q, nil, nil, &out)
	return &out, err
}

// ExplainRequest is one packet to explain at one bridge: Src and Dst are
// IP addresses of one family, Port the TCP destination port (0 means 25),
// Bridge a dpid or a bridge name, At the instant (zero: now, and then the
// answer also carries the verdict of the flows installed on the bridge).
type ExplainRequest struct {
	Src, Dst string
	Port     int
	Bridge   string
	At       time.Time
}

// Explain asks why a packet is dropped or forwarded (GET /v1/explain).
func (c *Client) Explain(ctx context.Context, req ExplainRequest) (*apitypes.Explain, error) {
	q := url.Values{"src": {req.Src}, "dst": {req.Dst}, "bridge": {req.Bridge}}
	if req.Port != 0 {
		q.Set("port", strconv.Itoa(req.Port))
	}
	if !req.At.IsZero() {
		q.Set("at", req.At.Format(time.RFC3339Nano))
	}
	var out apitypes.Explain
	_, err := c.Do(ctx, http.MethodGet, "/v1/explain", q, nil, nil, &out)
	return &out, err
}
