package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/op25b/op25b/api/apitypes"
)

// TestOverridesAudited: an exemption or a quarantine written, renewed and
// deleted item by item is recorded in the audit log like any item, with
// its old and new values, and the document of each revision can be read
// back.
func TestOverridesAudited(t *testing.T) {
	e := newEnv(t, nil)
	e.putExample()
	var w writeResponse
	body := `{"prefix": "10.1.9.9/32", "until": "2026-11-30T12:00:00+09:00", "reason": "abuse report", "ticket": "AB-88"}`
	e.expect(e.do(http.MethodPut, "/v1/quarantines/bot", body, "Authorization: Bearer x"), http.StatusCreated, &w)
	created := w.Revision
	e.expect(e.do(http.MethodPut, "/v1/quarantines/bot", strings.Replace(body, "11-30", "12-15", 1)), http.StatusOK, &w)
	e.expect(e.do(http.MethodDelete, "/v1/quarantines/bot", ""), http.StatusOK, &w)

	var audit apitypes.Audit
	e.expect(e.do(http.MethodGet, "/v1/audit?limit=3", ""), http.StatusOK, &audit)
	if len(audit.Records) != 3 {
		t.Fatalf("audit: %+v", audit)
	}
	del, renew, add := audit.Records[0], audit.Records[1], audit.Records[2]
	if !slices.Equal(add.Added, []string{"quarantines/bot"}) || !slices.Equal(renew.Changed, []string{"quarantines/bot"}) || !slices.Equal(del.Removed, []string{"quarantines/bot"}) {
		t.Errorf("added %v, changed %v, removed %v", add.Added, renew.Changed, del.Removed)
	}
	if len(renew.Changes) != 1 || !strings.Contains(string(renew.Changes[0].Old), "2026-11-30T12:00:00+09:00") || !strings.Contains(string(renew.Changes[0].New), "2026-12-15T12:00:00+09:00") {
		t.Errorf("renewal changes: %+v", renew.Changes)
	}
	var then apitypes.Config
	e.expect(e.do(http.MethodGet, fmt.Sprintf("/v1/config?revision=%d", created), ""), http.StatusOK, &then)
	if len(then.Quarantines) != 1 || then.Quarantines[0].Ticket != "AB-88" {
		t.Errorf("document at revision %d: quarantines %+v", created, then.Quarantines)
	}
	var now apitypes.Config
	e.expect(e.do(http.MethodGet, "/v1/config", ""), http.StatusOK, &now)
	if len(now.Quarantines) != 0 {
		t.Errorf("deleted quarantine still in the document: %+v", now.Quarantines)
	}
}
