package api

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestRollout(t *testing.T) {
	e := newEnv(t, nil)
	var empty RolloutResponse
	e.expect(e.do(http.MethodGet, "/v1/rollout", ""), http.StatusOK, &empty)
	if len(empty.Services) != 0 || len(empty.Pops) != 0 || !empty.At.Equal(testClock) {
		t.Errorf("rollout of the empty document = %+v", empty)
	}
	body, err := os.ReadFile(filepath.Join("testdata", "rollout.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.expect(e.do(http.MethodPut, "/v1/config", string(body)), http.StatusOK, nil)

	type pop struct {
		phases       []int
		active, next int // -1: absent
		nextAt       time.Time
	}
	check := func(query string, rev int64, want map[string]pop) {
		t.Helper()
		var got RolloutResponse
		e.expect(e.do(http.MethodGet, "/v1/rollout"+query, ""), http.StatusOK, &got)
		if got.Revision != rev || !reflect.DeepEqual(got.Pops, []string{"osaka-1", "tokyo-1"}) ||
			len(got.Services) != 1 || got.Services[0].Name != "ftth" || len(got.Services[0].Phases) != 3 {
			t.Fatalf("rollout%s = %+v", query, got)
		}
		for i, p := range got.Services[0].Pops {
			w := want[p.Pop]
			if p.Pop != got.Pops[i] || !reflect.DeepEqual(p.Phases, w.phases) || ptr(p.Active) != w.active || ptr(p.Next) != w.next ||
				(p.NextAt == nil) != w.nextAt.IsZero() || p.NextAt != nil && !p.NextAt.Equal(w.nextAt) {
				t.Errorf("rollout%s at %s: phases %v active %d next %d at %v; want %+v", query, p.Pop, p.Phases, ptr(p.Active), ptr(p.Next), p.NextAt, w)
			}
		}
	}
	rev := e.revision()
	osakaOwn := time.Date(2007, 1, 14, 15, 0, 0, 0, time.UTC)
	global := time.Date(2007, 1, 31, 15, 0, 0, 0, time.UTC)
	check("", rev, map[string]pop{ // testClock, 2007-01-10
		"osaka-1": {[]int{0, 1, 2}, 0, 1, osakaOwn},
		"tokyo-1": {[]int{0, 2}, 0, 2, global},
	})
	check("?at=2007-01-15T00:00:00%2B09:00", rev, map[string]pop{
		"osaka-1": {[]int{0, 1, 2}, 1, 2, global},
		"tokyo-1": {[]int{0, 2}, 0, 2, global},
	})
	check("?at=2006-01-01T00:00:00Z", rev, map[string]pop{
		"osaka-1": {[]int{0, 1, 2}, -1, 0, time.Date(2006, 11, 30, 15, 0, 0, 0, time.UTC)},
		"tokyo-1": {[]int{0, 2}, -1, 0, time.Date(2006, 11, 30, 15, 0, 0, 0, time.UTC)},
	})
	check("?at=2008-01-01T00:00:00Z", rev, map[string]pop{
		"osaka-1": {[]int{0, 1, 2}, 2, -1, time.Time{}},
		"tokyo-1": {[]int{0, 2}, 2, -1, time.Time{}},
	})
	rec := e.do(http.MethodGet, "/v1/rollout?at=2007-01-15", "")
	e.expectError(rec, http.StatusBadRequest, CodeBadRequest, "at")
}

func ptr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
