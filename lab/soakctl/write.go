package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/op25b/op25b/client"
	"github.com/op25b/op25b/lab/soak"
	"github.com/op25b/op25b/topology"
)

func runPlan(args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	seed := fs.Int64("seed", 1, "seed")
	duration := fs.Duration("duration", 30*time.Minute, "soak duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	plan, err := soak.Plan(*seed, *duration, soak.DefaultLab)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(plan)
}

// runWrite is the writer: until SIGTERM, a random valid change every
// -interval (jittered) with If-Match, every answer recorded in
// DIR/writes.jsonl; between writes the historian appends new revisions to
// DIR/revisions.jsonl.
func runWrite(args []string) error {
	fs := flag.NewFlagSet("write", flag.ContinueOnError)
	var a apiFlags
	a.register(fs)
	dir := fs.String("dir", "", "directory of writes.jsonl and revisions.jsonl")
	seed := fs.Int64("seed", 1, "seed of the changes")
	interval := fs.Duration("interval", 3*time.Second, "mean pause between writes")
	stale := fs.Float64("stale", 0.1, "fraction of writes sent with an outdated If-Match (must be refused)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cs, err := a.clients()
	if err != nil {
		return err
	}
	writes, err := appendJSONLines(filepath.Join(*dir, "writes.jsonl"))
	if err != nil {
		return err
	}
	defer writes.Close()
	revs, err := appendJSONLines(filepath.Join(*dir, "revisions.jsonl"))
	if err != nil {
		return err
	}
	defer revs.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rng := rand.New(rand.NewPCG(uint64(*seed), 0x17))
	hist := &historian{clients: cs, out: revs}
	// The history starts at the revision the setup wrote.
	var base *topology.Document
	var baseRev int64
	for base == nil {
		for _, c := range cs {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			cfg, err := c.Config(cctx)
			cancel()
			if err == nil {
				base, baseRev = cfg.Document, cfg.Revision
				break
			}
		}
		if base == nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Second)
		}
	}
	hist.last = baseRev - 1
	if err := hist.pass(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "soakctl write: first history pass: %v\n", err)
	}
	fmt.Fprintf(os.Stderr, "soakctl write: baseline revision %d\n", baseRev)
	os.WriteFile(filepath.Join(*dir, "baseline"), []byte(fmt.Sprint(baseRev)), 0o644)
	lastHistory := time.Now()
	last, lastRev := base, baseRev
	for ctx.Err() == nil {
		pause := time.Duration(float64(*interval) * (0.5 + rng.Float64()))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		if ctx.Err() != nil {
			break
		}
		c := cs[rng.IntN(len(cs))]
		// Read the current document from any replica that answers; when
		// none does (quorum lost), write on the last one read anyway, so
		// the refusals of an unavailable cluster are recorded too.
		cur, curRev := last, lastRev
		for i := range cs {
			rc := cs[(rng.IntN(len(cs))+i)%len(cs)]
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			cfg, err := rc.Config(cctx)
			cancel()
			if err == nil {
				cur, curRev = cfg.Document, cfg.Revision
				break
			}
		}
		last, lastRev = cur, curRev
		ch := soak.Mutate(rng, cur, time.Now())
		if err := topology.Validate(ch.Result); err != nil {
			return fmt.Errorf("writer produced an invalid change %s: %w", ch.Op, err)
		}
		ifMatch := curRev
		if rng.Float64() < *stale {
			ifMatch = curRev - 1 - int64(rng.IntN(3))
			ch.Op = "stale " + ch.Op
		}
		w := soak.Write{Op: ch.Op, IfMatch: ifMatch, Hash: soak.DocHash(ch.Result), Doc: soak.Normalize(ch.Result),
			Unchanged: soak.DocHash(ch.Result) == soak.DocHash(cur)}
		w.Sent = time.Now()
		rev, err := send(ctx, c, ch, ifMatch)
		w.Done = time.Now()
		classify(&w, rev, err)
		writes.add(w)
		if time.Since(lastHistory) > 5*time.Second {
			if err := hist.pass(ctx); err == nil {
				lastHistory = time.Now()
			}
		}
	}
	// A last pass with a fresh context: SIGTERM ended the writes, not the history.
	hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for hctx.Err() == nil {
		if err := hist.pass(hctx); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	return nil
}

func send(ctx context.Context, c *client.Client, ch soak.Change, ifMatch int64) (int64, error) {
	// Longer than the API's own 10 s wait for etcd: a timeout here is an
	// answer we did not get, not one the server gave.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	switch {
	case ch.Kind == "":
		return c.Apply(cctx, ch.Result, ifMatch)
	case ch.Delete:
		return c.DeleteItem(cctx, ch.Kind, ch.Key, ifMatch)
	default:
		return c.PutItem(cctx, ch.Kind, ch.Key, ch.Item, ifMatch)
	}
}

func classify(w *soak.Write, rev int64, err error) {
	var ae *client.APIError
	switch {
	case err == nil:
		w.Outcome, w.Revision, w.Status = soak.Acked, rev, http.StatusOK
	case errors.As(err, &ae):
		w.Status, w.Code = ae.Status, ae.Code
		if ae.Status >= 500 {
			// 503: etcd did not answer in time; the write may still commit.
			w.Outcome = soak.Indeterminate
		} else {
			w.Outcome = soak.Refused
		}
	case notSent(err):
		w.Outcome, w.Code = soak.Refused, "unreachable"
	default:
		w.Outcome, w.Code = soak.Indeterminate, "no answer: "+err.Error()
	}
}
