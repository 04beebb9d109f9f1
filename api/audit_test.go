package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
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

// putAuditRecords writes n audit records straight into etcd, one put (one
// revision) each, as n committed writes would leave them.
func putAuditRecords(t *testing.T, e *apiEnv, n int) {
	t.Helper()
	cli := e.store.Client()
	for i := 0; i < n; i++ {
		now := time.Now().UTC()
		key := e.store.KeyPrefix("audit/") + fmt.Sprintf("%016x.%08x", now.UnixNano(), i)
		val := fmt.Sprintf(`{"time":%q,"who":"w","summary":{"changed":["ports"]}}`, now.Format(time.RFC3339Nano))
		if _, err := cli.Put(context.Background(), key, val); err != nil {
			t.Fatal(err)
		}
	}
}

// pageAll reads the whole log through GET /v1/audit with limit, following
// next_before, and checks every page's shape.
func pageAll(t *testing.T, e *apiEnv, limit int) []int64 {
	t.Helper()
	var revs []int64
	before := int64(0)
	for pages := 0; ; pages++ {
		if pages > 5000 {
			t.Fatalf("limit %d: paging does not end", limit)
		}
		q := fmt.Sprintf("/v1/audit?limit=%d", limit)
		if before != 0 {
			q += fmt.Sprintf("&before=%d", before)
		}
		var page AuditResponse
		e.expect(e.do(http.MethodGet, q, ""), http.StatusOK, &page)
		if len(page.Records) > limit {
			t.Fatalf("%s: %d records", q, len(page.Records))
		}
		if page.NextBefore != 0 && len(page.Records) != limit {
			t.Fatalf("%s: next_before with a short page of %d", q, len(page.Records))
		}
		for _, r := range page.Records {
			revs = append(revs, r.Revision)
		}
		if page.NextBefore == 0 {
			return revs
		}
		if page.NextBefore != page.Records[len(page.Records)-1].Revision {
			t.Fatalf("%s: next_before %d is not the last record's revision", q, page.NextBefore)
		}
		before = page.NextBefore
	}
}

// Regression (issue 11, "Audit paging"): GET /v1/audit?limit=1000 of 1350
// records returned 1000 and no next_before (the API asked the store for
// limit+1 and the store capped at 1000).
func TestRegressionAuditPagingLimit1000(t *testing.T) {
	e := newEnv(t, nil)
	putAuditRecords(t, e, 1350)
	var page AuditResponse
	e.expect(e.do(http.MethodGet, "/v1/audit?limit=1000", ""), http.StatusOK, &page)
	if len(page.Records) != 1000 || page.NextBefore == 0 {
		t.Fatalf("limit=1000 of 1350: %d records, next_before %d; want 1000 and a next page", len(page.Records), page.NextBefore)
	}
	if got := pageAll(t, e, 1000); len(got) != 1350 {
		t.Fatalf("paging with limit=1000 saw %d of 1350 records", len(got))
	}
}

// Property: for every record count and every limit, paging from the newest
// record sees every record exactly once, newest first, and next_before is
// absent exactly on the last page. Counts and limits sit on and around
// the page size, the default and the maximum.
func TestAuditPagingProperty(t *testing.T) {
	e := newEnv(t, nil)
	have := 0
	for _, count := range []int{0, 1, 2, 49, 50, 51, 999, 1000, 1001, 1350} {
		putAuditRecords(t, e, count-have)
		have = count
		var all []int64
		{
			// The reference: one big read straight from the store.
			recs, err := e.store.Audit(context.Background(), 5000, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				all = append(all, r.Revision)
			}
		}
		if len(all) != count {
			t.Fatalf("store holds %d records, want %d", len(all), count)
		}
		for _, limit := range []int{1, 2, 3, 49, 50, 51, 999, 1000} {
			if limit < 3 && count > 60 {
				continue // thousands of one-record pages add nothing over the small counts
			}
			got := pageAll(t, e, limit)
			if !slices.Equal(got, all) {
				t.Fatalf("count %d, limit %d: paged %d records, want %d (newest first, each once)", count, limit, len(got), len(all))
			}
		}
	}
}
