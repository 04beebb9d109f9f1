package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestAuditRecordsEveryWrite(t *testing.T) {
	e := newEnv(t, nil)
	r1 := e.putExample()
	var w writeResponse
	e.expect(e.do(http.MethodPut, "/v1/relays/msa2", `{"prefix": "192.0.2.26/32"}`), http.StatusCreated, &w)
	r2 := w.Revision
	e.expect(e.do(http.MethodPut, "/v1/relays/msa2", `{"prefix": "192.0.2.27/32"}`), http.StatusOK, &w)
	r3 := w.Revision
	e.expect(e.do(http.MethodDelete, "/v1/relays/msa2", ""), http.StatusOK, &w)
	r4 := w.Revision
	// Rejected writes and dry runs leave no record.
	e.do(http.MethodPut, "/v1/relays/bad", `{"prefix": "nope"}`)
	e.do(http.MethodPut, "/v1/config?dry_run=true", contractExample(t))

	var page AuditResponse
	e.expect(e.do(http.MethodGet, "/v1/audit", ""), http.StatusOK, &page)
	if len(page.Records) != 4 || page.NextBefore != 0 {
		t.Fatalf("audit: %+v, want 4 records and no next page", page)
	}
	want := []struct {
		rev  int64
		kind string
		item string
	}{{r4, "removed", "relays/msa2"}, {r3, "changed", "relays/msa2"}, {r2, "added", "relays/msa2"}, {r1, "added", "pools/tokyo-dyn"}}
	for i, w := range want {
		rec := page.Records[i]
		list := map[string][]string{"added": rec.Added, "changed": rec.Changed, "removed": rec.Removed}[w.kind]
		if rec.Revision != w.rev || rec.Who != anonymous || rec.Time.IsZero() || !strings.Contains(strings.Join(list, ","), w.item) {
			t.Fatalf("record %d = %+v, want revision %d with %s %s", i, rec, w.rev, w.kind, w.item)
		}
	}

	// Paging: two by two, newest first, next_before chains the pages.
	var p1, p2 AuditResponse
	e.expect(e.do(http.MethodGet, "/v1/audit?limit=2", ""), http.StatusOK, &p1)
	if len(p1.Records) != 2 || p1.Records[0].Revision != r4 || p1.NextBefore != r3 {
		t.Fatalf("page 1: %+v", p1)
	}
	e.expect(e.do(http.MethodGet, fmt.Sprintf("/v1/audit?limit=2&before=%d", p1.NextBefore), ""), http.StatusOK, &p2)
	if len(p2.Records) != 2 || p2.Records[0].Revision != r2 || p2.Records[1].Revision != r1 || p2.NextBefore != 0 {
		t.Fatalf("page 2: %+v", p2)
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=5000", "before=-1", "before=abc"} {
		field := strings.Split(q, "=")[0]
		e.expectError(e.do(http.MethodGet, "/v1/audit?"+q, ""), http.StatusBadRequest, CodeBadRequest, field)
	}
}
