package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/op25b/op25b/api/apitypes"
)

// TestConfigAtRevisionAndRollback: GET /v1/config?revision=N returns past
// documents; POST /v1/config/rollback restores one, only with the current
// revision as If-Match, and the audit log shows it as a rollback with
// every item's old and new value.
func TestConfigAtRevisionAndRollback(t *testing.T) {
	e := newEnv(t, nil)
	rev1 := e.putExample()
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/pools/tokyo-dyn", `{"prefix": "10.2.0.0/16", "kind": "dynamic", "service": "ftth"}`), http.StatusOK, &w)
	rev2 := w.Revision

	var past apitypes.Config
	e.expect(e.do(http.MethodGet, fmt.Sprintf("/v1/config?revision=%d", rev1), ""), http.StatusOK, &past)
	if past.Revision != rev1 || past.Pools[0].Name != "tokyo-dyn" || past.Pools[0].Prefix != "10.1.0.0/16" {
		t.Fatalf("config at %d: %+v", rev1, past)
	}
	rec := e.do(http.MethodGet, fmt.Sprintf("/v1/config?revision=%d", rev2+1000), "")
	if er := e.expectError(rec, http.StatusNotFound, CodeNotFound, "revision"); !strings.Contains(er.Message, "does not exist yet") {
		t.Fatalf("future revision: %s", er.Message)
	}
	e.expectError(e.do(http.MethodGet, "/v1/config?revision=soon", ""), http.StatusBadRequest, CodeBadRequest, "revision")

	// Stale PUT: 409, and the message says how to re-base.
	er := e.expectError(e.do(http.MethodPut, "/v1/config", contractExample(t), fmt.Sprintf("If-Match: %d", rev1)), http.StatusConflict, CodeConflict, "")
	for _, want := range []string{fmt.Sprintf("at revision %d", rev2), fmt.Sprintf("based on revision %d", rev1), "Re-base", "GET /v1/config"} {
		if !strings.Contains(er.Message, want) {
			t.Fatalf("conflict message lacks %q: %s", want, er.Message)
		}
	}

	body := fmt.Sprintf(`{"revision": %d}`, rev1)
	e.expectError(e.do(http.MethodPost, "/v1/config/rollback", body), http.StatusBadRequest, CodeBadRequest, "If-Match")
	e.expectError(e.do(http.MethodPost, "/v1/config/rollback", body, fmt.Sprintf("If-Match: %d", rev1)), http.StatusConflict, CodeConflict, "*")
	e.expectError(e.do(http.MethodPost, "/v1/config/rollback", `{"revision": 0}`, fmt.Sprintf("If-Match: %d", rev2)), http.StatusBadRequest, CodeBadRequest, "revision")
	e.expectError(e.do(http.MethodPost, "/v1/config/rollback", `{"revison": 3}`, fmt.Sprintf("If-Match: %d", rev2)), http.StatusBadRequest, CodeInvalidJSON, "*")
	e.expect(e.do(http.MethodPost, "/v1/config/rollback", body, fmt.Sprintf("If-Match: %d", rev2)), http.StatusOK, &w)
	rev3 := w.Revision
	if got := e.load().Pools[0].Prefix; got != "10.1.0.0/16" || e.revision() != rev3 {
		t.Fatalf("after rollback: prefix %s, revision %d (want %d)", got, e.revision(), rev3)
	}

	var aud apitypes.Audit
	e.expect(e.do(http.MethodGet, "/v1/audit?limit=2", ""), http.StatusOK, &aud)
	rb, upd := aud.Records[0], aud.Records[1]
	if rb.Op != apitypes.OpRollback || rb.RollbackOf != rev1 || rb.Base != rev2 || rb.ChangesTotal != 1 || len(rb.Changes) != 1 {
		t.Fatalf("rollback record: %+v", rb)
	}
	if upd.Op != apitypes.OpUpdate || len(upd.Changes) != 1 || upd.Changes[0].Item != "pools/tokyo-dyn" ||
		!strings.Contains(string(upd.Changes[0].Old), "10.1.0.0/16") || !strings.Contains(string(upd.Changes[0].New), "10.2.0.0/16") {
		t.Fatalf("update record: %+v", upd)
	}
	// A read token cannot roll back.
}

// A pruned revision is 404 and names the oldest revision still kept.
func TestConfigAtPrunedRevision(t *testing.T) {
	e := newEnv(t, nil)
	e.store.SetHistoryLimits(2, 1, 1<<30)
	var revs []int64
	revs = append(revs, e.putExample())
	for i := 0; i < 3; i++ {
		var w writeResponse
		e.expect(e.do(http.MethodPut, "/v1/relays/msa", fmt.Sprintf(`{"prefix": "192.0.2.%d/32"}`, 30+i)), http.StatusOK, &w)
		revs = append(revs, w.Revision)
	}
	er := e.expectError(e.do(http.MethodGet, fmt.Sprintf("/v1/config?revision=%d", revs[0]), ""), http.StatusNotFound, CodeNotFound, "revision")
	if !strings.Contains(er.Message, fmt.Sprintf("oldest revision available is %d", revs[1])) {
		t.Fatalf("pruned: %s", er.Message)
	}
}
