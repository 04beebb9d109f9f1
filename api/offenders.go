package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/offenders"
	"github.com/op25b/op25b/topology"
	"github.com/op25b/op25b/topology/store"
)

// OffendersResponse is GET /v1/offenders.
type OffendersResponse = apitypes.Offenders

// OffenderSource is this replica's offender tracker (*offenders.Tracker):
// the attempts of the bridges it masters, or mastered within the
// retention.
type OffenderSource interface {
	Query(q offenders.Query) (offenders.Result, error)
	Retention() time.Duration
	Stats(now time.Time) offenders.Stats
}

// Limits of GET /v1/offenders.
const (
	defaultOffendersSince = time.Hour
	defaultOffendersLimit = 100
	maxOffendersLimit     = 10_000
)

// offenders answers GET /v1/offenders. Each replica knows only the bridges
// it masters (it alone reads their offender tables), so the replica asked
// asks every other one (?local=1, with the caller's credentials, all at
// once, each bounded by the HTTP client's timeout) and merges the answers;
// a replica that does not answer makes the result truncated.
func (s *server) offenders(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Offenders == nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "", "offender tracking is not running on this replica")
	}
	q := r.URL.Query()
	since := defaultOffendersSince
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return newError(http.StatusBadRequest, CodeBadRequest, "since", fmt.Sprintf("since must be a positive duration such as 15m, 1h or 24h, got %q", v))
		}
		since = d
	}
	if ret := s.cfg.Offenders.Retention(); since > ret {
		return newError(http.StatusBadRequest, CodeBadRequest, "since",
			fmt.Sprintf("since %s goes back further than the %s this cluster remembers (op25bd --offenders-retention)", since, ret))
	}
	limit := defaultOffendersLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxOffendersLimit {
			return newError(http.StatusBadRequest, CodeBadRequest, "limit", fmt.Sprintf("limit must be 1..%d, got %q", maxOffendersLimit, v))
		}
		limit = n
	}
	pop := q.Get("pop")
	if len(pop) > 63 {
		return newError(http.StatusBadRequest, CodeBadRequest, "pop", "pop is longer than a name can be (63 characters)")
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, _, err := s.currentDocument(ctx)
	if err != nil {
		return err
	}
	query := offenders.Query{Now: s.cfg.Now(), Since: since, Limit: limit}
	if pop != "" {
		query.Bridge = func(dpid string) bool { p, _ := doc.BridgePop(topology.DPID(dpid)); return p == pop }
	}
	res, err := s.cfg.Offenders.Query(query)
	if err != nil {
		return newError(http.StatusBadRequest, CodeBadRequest, "", err.Error())
	}
	if s.cfg.Cluster != nil && q.Get(localOnlyParam) == "" {
		res, err = s.mergeReplicas(ctx, r, res, limit)
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, offendersView(doc, res))
	return nil
}

// mergeReplicas adds every other replica's answer to local.
func (s *server) mergeReplicas(ctx context.Context, r *http.Request, local offenders.Result, limit int) (offenders.Result, error) {
	replicas, err := s.cfg.Cluster.Replicas(ctx)
	if err != nil {
		return offenders.Result{}, fmt.Errorf("read replicas: %w", err)
	}
	results := []offenders.Result{local}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rep := range replicas {
		if rep.ID == s.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.forwardOffenders(ctx, r, rep)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.cfg.Logger.Warn("offenders: a replica did not answer; the result is marked truncated", "replica", rep.ID, "err", err)
				res = offenders.Result{Since: local.Since, Truncated: true}
			}
			results = append(results, res)
		}()
	}
	wg.Wait()
	return offenders.Merge(limit, results...), nil
}

// forwardOffenders asks one replica for its own offenders (?local=1).
func (s *server) forwardOffenders(ctx context.Context, r *http.Request, rep store.ReplicaInfo) (offenders.Result, error) {
	base := rep.APIAddr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	v := r.URL.Query()
	v.Set(localOnlyParam, "1")
	u := strings.TrimSuffix(base, "/") + "/v1/offenders?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return offenders.Result{}, fmt.Errorf("replica %s: %w", rep.ID, err)
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return offenders.Result{}, fmt.Errorf("replica %s: %w", rep.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return offenders.Result{}, fmt.Errorf("replica %s: HTTP %d", rep.ID, resp.StatusCode)
	}
	var remote OffendersResponse
	// maxOffendersLimit entries of ~250 bytes.
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&remote); err != nil {
		return offenders.Result{}, fmt.Errorf("replica %s: %w", rep.ID, err)
	}
	res := offenders.Result{Since: remote.Since, Truncated: remote.Truncated}
	for _, o := range remote.Offenders {
		src, err := netip.ParseAddr(o.Src)
		if err != nil {
			return offenders.Result{}, fmt.Errorf("replica %s: offender src %q: %w", rep.ID, o.Src, err)
		}
		res.Offenders = append(res.Offenders, offenders.Offender{Src: src, Pool: o.Pool, Bridge: o.Bridge, Observed: o.Observed,
			Attempts: o.Attempts, Destinations: o.Destinations, FirstSeen: o.FirstSeen, LastSeen: o.LastSeen})
	}
	return res, nil
}

// offendersView is the wire form; pops come from the current document.
func offendersView(doc *topology.Document, res offenders.Result) OffendersResponse {
	out := OffendersResponse{Since: res.Since.UTC(), Truncated: res.Truncated, Offenders: make([]apitypes.Offender, 0, len(res.Offenders))}
	for _, o := range res.Offenders {
		pop, _ := doc.BridgePop(topology.DPID(o.Bridge))
		out.Offenders = append(out.Offenders, apitypes.Offender{
			Src: o.Src.String(), Pool: o.Pool, Bridge: o.Bridge, Pop: pop, Attempts: o.Attempts, Destinations: o.Destinations,
			FirstSeen: o.FirstSeen.UTC(), LastSeen: o.LastSeen.UTC(), Observed: o.Observed,
		})
	}
	return out
}
