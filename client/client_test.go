package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseServer(t *testing.T) {
	cases := []struct {
		in, want, wantErr string
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"localhost:8080", "http://localhost:8080", ""},
		{"[::1]:8080", "http://[::1]:8080", ""},
		{"op25b-1", "http://op25b-1", ""},
		{"https://op25b.example.net:8443/", "https://op25b.example.net:8443", ""},
		{"https://proxy.example.net/op25b/", "https://proxy.example.net/op25b", ""},
		{" 127.0.0.1:8080 ", "http://127.0.0.1:8080", ""},
		{"", "", "empty server address"},
		{"ftp://127.0.0.1:8080", "", `scheme "ftp" is not supported`},
		{"http://", "", "has no host"},
		{"127.0.0.1:99999", "", "not a number in 1..65535"},
		{"127.0.0.1:http", "", "not a URL"},
		{"http://user:pw@127.0.0.1:8080", "", "credentials"},
		{"http://127.0.0.1:8080/?x=1", "", "query or fragment"},
	}
	for _, tc := range cases {
		u, err := ParseServer(tc.in)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "HOST:PORT") && !strings.Contains(err.Error(), "credentials") && !strings.Contains(err.Error(), "port") {
				t.Errorf("ParseServer(%q) = %v, %v; want error with %q", tc.in, u, err, tc.wantErr)
			}
		case err != nil || u.String() != tc.want:
			t.Errorf("ParseServer(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

// Errors: the server's error body becomes an *APIError; an answer that is
// not one still gets a code; the context's deadline bounds the call.
func TestErrorsAndDeadline(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/status":
			if r.Header.Get("Authorization") != "Bearer tok" {
				t.Errorf("Authorization %q", r.Header.Get("Authorization"))
			}
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error": {"code": "revision_conflict", "message": "stale", "field": ""}}`))
		case "/v1/audit":
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html>proxy error</html>"))
		default:
			<-hang
		}
	}))
	defer srv.Close()
	defer close(hang)
	c, err := New(strings.TrimPrefix(srv.URL, "http://"), Options{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Status(ctx)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ErrorCode(err) != "revision_conflict" {
		t.Fatalf("Status: %v", err)
	}
	if _, err := c.Audit(ctx, 10, 0); ErrorCode(err) != "http_502" || !strings.Contains(err.Error(), "proxy error") {
		t.Fatalf("Audit: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Config(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("Config past its deadline: %v after %s", err, time.Since(start))
	}
}

// Explain sends the packet as query parameters: port only when given, at
// only when set (in RFC 3339 with nanoseconds).
func TestExplainQuery(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		w.Write([]byte(`{"verdict": "drop", "rule": "quarantine", "installed": {"verdict": "drop", "agrees": true, "source": "local"}}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Explain(context.Background(), ExplainRequest{Src: "10.1.9.9", Dst: "2001:db8::25", Bridge: "tokyo-1-sub-a"})
	if err != nil || e.Verdict != "drop" || e.Installed == nil || !e.Installed.Agrees {
		t.Fatalf("Explain = %+v, %v", e, err)
	}
	at := time.Date(2026, 11, 30, 3, 0, 0, 5, time.UTC)
	if _, err := c.Explain(context.Background(), ExplainRequest{Src: "10.1.9.9", Dst: "192.0.2.25", Port: 587, Bridge: "0000000000000001", At: at}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/v1/explain?bridge=tokyo-1-sub-a&dst=2001%3Adb8%3A%3A25&src=10.1.9.9",
		"/v1/explain?at=2026-11-30T03%3A00%3A00.000000005Z&bridge=0000000000000001&dst=192.0.2.25&port=587&src=10.1.9.9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
