package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/lab/soak"
)

// apiFlags are the flags of every command that talks to the REST API.
type apiFlags struct {
	servers, ca, cert, key, tokenFile string
}

func (a *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.servers, "servers", "", "comma-separated API base URLs, one per replica")
	fs.StringVar(&a.ca, "ca", "", "CA of the API certificate")
	fs.StringVar(&a.cert, "cert", "", "client certificate")
	fs.StringVar(&a.key, "key", "", "client key")
	fs.StringVar(&a.tokenFile, "token-file", "", "file holding the bearer token")
}

// clients returns one client per replica. TLS material is read once: the
// CA does not change when the soak rotates certificates, and the client
// certificate stays valid.
func (a *apiFlags) clients() ([]*client.Client, error) {
	opts := client.Options{}
	if a.tokenFile != "" {
		b, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return nil, err
		}
		opts.Token = strings.TrimSpace(string(b))
	}
	if a.ca != "" {
		tc, err := client.TLSFromFiles(a.ca, a.cert, a.key)
		if err != nil {
			return nil, err
		}
		opts.TLS = tc
	}
	var out []*client.Client
	for _, s := range strings.Split(a.servers, ",") {
		c, err := client.New(s, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// jsonLines appends JSON values to a file, one per line, flushed at once
// (a soak killed half-way still leaves a readable record).
type jsonLines struct {
	mu sync.Mutex
	f  *os.File
}

func appendJSONLines(path string) (*jsonLines, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonLines{f: f}, nil
}

func (j *jsonLines) add(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("soakctl: encode record: %v", err)) // our own types always encode
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.f.Write(append(b, '\n'))
}

func (j *jsonLines) Close() error { return j.f.Close() }

// readJSONLines decodes a JSON-lines file into a slice of T; a missing
// file is empty, a torn last line (a process killed while writing) is
// skipped.
func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			continue
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// historian follows the audit log and records each new revision with its
// content, so the checker has every revision even after the store has
// forgotten old ones.
type historian struct {
	clients []*client.Client
	out     *jsonLines
	last    int64
}

// pass records every revision after h.last, oldest first. It stops at the
// first error (a replica or etcd down): the next pass picks up from there.
func (h *historian) pass(ctx context.Context) error {
	var errs []error
	for _, c := range h.clients {
		err := h.passWith(ctx, c)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (h *historian) passWith(ctx context.Context, c *client.Client) error {
	var fresh []soak.Revision
	var before int64
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		page, err := c.Audit(cctx, 100, before)
		cancel()
		if err != nil {
			return err
		}
		done := len(page.Records) == 0
		for _, r := range page.Records {
			if r.Revision <= h.last {
				done = true
				break
			}
			fresh = append(fresh, soak.Revision{Revision: r.Revision, Time: r.Time, Who: r.Who})
		}
		if done || page.NextBefore == 0 {
			break
		}
		before = page.NextBefore
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Revision < fresh[j].Revision })
	for _, r := range fresh {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cfg, err := c.ConfigAt(cctx, r.Revision)
		cancel()
		if err != nil {
			return fmt.Errorf("revision %d: %w", r.Revision, err)
		}
		r.Doc = soak.Normalize(cfg.Document)
		r.Hash = soak.DocHash(cfg.Document)
		h.out.add(r)
		h.last = r.Revision
	}
	return nil
}

// notSent reports whether err says the request never left: the server was
// not reachable at all, so nothing can have been stored.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func runHistory(args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	var a apiFlags
	a.register(fs)
	out := fs.String("out", "", "revisions JSON-lines file to append to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := a.clients()
	if err != nil {
		return err
	}
	have, err := readJSONLines[soak.Revision](*out)
	if err != nil {
		return err
	}
	w, err := appendJSONLines(*out)
	if err != nil {
		return err
	}
	defer w.Close()
	h := &historian{clients: cs, out: w}
	for _, r := range have {
		h.last = max(h.last, r.Revision)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err := h.pass(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Second)
	}
}
