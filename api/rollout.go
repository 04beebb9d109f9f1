package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/topology"
)

// RolloutResponse is GET /v1/rollout.
type RolloutResponse = apitypes.Rollout

// rollout answers which phase of each service is active at each pop and
// when the next boundary comes, at ?at= (RFC 3339; default now). It is the
// data of the rollout page and of the op25b_phase_* metrics, computed by
// topology.Timeline, so a NOC planning a date sees what the controllers
// will do.
func (s *server) rollout(w http.ResponseWriter, r *http.Request) error {
	at := s.cfg.Now()
	if raw := r.URL.Query().Get("at"); raw != "" {
		t, err := topology.ParseTime(raw)
		if err != nil {
			return newError(http.StatusBadRequest, CodeBadRequest, "at", fmt.Sprintf("at must be an RFC 3339 time: %v", err))
		}
		at = t
	}
	ctx, cancel := s.storeContext(r)
	defer cancel()
	doc, rev, err := s.currentDocument(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rolloutOf(doc, rev, at))
	return nil
}

func rolloutOf(doc *topology.Document, rev int64, at time.Time) RolloutResponse {
	pops := doc.Pops()
	resp := RolloutResponse{Revision: rev, At: at.UTC(), Pops: nonNil(pops), Services: []apitypes.ServiceRollout{}}
	if doc == nil {
		return resp
	}
	for _, svc := range doc.Services {
		sr := apitypes.ServiceRollout{Name: svc.Name, Phases: svc.Phases, Pops: []apitypes.PopRollout{}}
		for _, pop := range pops {
			tl := doc.Timeline(svc.Name, pop, at)
			pr := apitypes.PopRollout{Pop: pop, Phases: nonNil(tl.Phases)}
			if tl.Active >= 0 {
				pr.Active = &tl.Active
			}
			if tl.Next >= 0 {
				next := tl.NextAt.UTC()
				pr.Next, pr.NextAt = &tl.Next, &next
			}
			sr.Pops = append(sr.Pops, pr)
		}
		resp.Services = append(resp.Services, sr)
	}
	return resp
}
