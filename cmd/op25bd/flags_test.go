package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/op25b/op25b/flows"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o options)
		wantErr string // substring; "" = success
	}{
		{name: "defaults (docs/operations.md)", check: func(t *testing.T, o options) {
			if o.OpenFlowListen != ":6653" || o.APIListen != "127.0.0.1:8080" || o.DataDir != "./op25b-data" ||
				len(o.EtcdEndpoints) != 0 || o.AuditInterval != 30*time.Second || o.AuditSweep != 10*time.Minute || o.LogLevel != slog.LevelInfo ||
				o.LeaseTTL != 2*time.Second || o.APITokenFile != "" || o.NodeID == "" {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "flags", args: []string{"--openflow-listen", "127.0.0.1:7000", "--api-listen=:9090",
			"--etcd-endpoints", "http://a:2379, http://b:2379", "--node-id", "pop1-a", "--log-level", "debug",
			"--audit-interval", "5s", "--api-token-file", "/etc/op25b/tokens"},
			check: func(t *testing.T, o options) {
				if o.OpenFlowListen != "127.0.0.1:7000" || o.APIListen != ":9090" || o.NodeID != "pop1-a" ||
					strings.Join(o.EtcdEndpoints, "|") != "http://a:2379|http://b:2379" || o.LogLevel != slog.LevelDebug ||
					o.AuditInterval != 5*time.Second || o.APITokenFile != "/etc/op25b/tokens" {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "environment", env: map[string]string{"OP25B_ETCD_ENDPOINTS": "http://e:2379", "OP25B_AUDIT_INTERVAL": "1m",
			"OP25B_NODE_ID": "from-env", "OP25B_DATA_DIR": "/var/lib/op25b", "OP25B_LEASE_TTL": "4s"},
			check: func(t *testing.T, o options) {
				if strings.Join(o.EtcdEndpoints, ",") != "http://e:2379" || o.AuditInterval != time.Minute ||
					o.NodeID != "from-env" || o.DataDir != "/var/lib/op25b" || o.LeaseTTL != 4*time.Second {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "command line wins over environment", args: []string{"--node-id", "cli"},
			env: map[string]string{"OP25B_NODE_ID": "env"},
			check: func(t *testing.T, o options) {
				if o.NodeID != "cli" {
					t.Errorf("node id %q, want cli", o.NodeID)
				}
			}},
		{name: "bad duration flag", args: []string{"--audit-interval", "often"}, wantErr: "audit-interval"},
		{name: "bad duration env", env: map[string]string{"OP25B_AUDIT_INTERVAL": "often"}, wantErr: "OP25B_AUDIT_INTERVAL"},
		{name: "zero audit interval", args: []string{"--audit-interval", "0s"}, wantErr: "must be positive"},
		{name: "audit sweep", args: []string{"--audit-sweep", "1h"}, env: map[string]string{"OP25B_AUDIT_INTERVAL": "10s"},
			check: func(t *testing.T, o options) {
				if o.AuditSweep != time.Hour || o.AuditInterval != 10*time.Second {
					t.Errorf("audit sweep %v, interval %v", o.AuditSweep, o.AuditInterval)
				}
			}},
		{name: "negative audit sweep from env", env: map[string]string{"OP25B_AUDIT_SWEEP": "-1m"}, wantErr: "OP25B_AUDIT_SWEEP (--audit-sweep) -1m0s: must be positive"},
		{name: "bad log level", args: []string{"--log-level", "chatty"}, wantErr: "--log-level"},
		{name: "bad listen address", args: []string{"--openflow-listen", "6653"}, wantErr: "--openflow-listen"},
		{name: "bad api address from env", env: map[string]string{"OP25B_API_LISTEN": "nowhere"}, wantErr: "OP25B_API_LISTEN (--api-listen) \"nowhere\""},
		{name: "bad lease from env names the variable", env: map[string]string{"OP25B_LEASE_TTL": "10ms"}, wantErr: "OP25B_LEASE_TTL (--lease-ttl) 10ms"},
		{name: "bad log level from env names the variable", env: map[string]string{"OP25B_LOG_LEVEL": "loud"}, wantErr: "OP25B_LOG_LEVEL (--log-level)"},
		{name: "log format json", args: []string{"--log-format", "json"}, check: func(t *testing.T, o options) {
			if o.LogFormat != "json" {
				t.Errorf("log format %q", o.LogFormat)
			}
		}},
		{name: "log format default text", check: func(t *testing.T, o options) {
			if o.LogFormat != "text" || o.MetricsListen != "" {
				t.Errorf("log format %q, metrics listen %q", o.LogFormat, o.MetricsListen)
			}
		}},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "--log-format \"xml\": want text or json"},
		{name: "metrics listener", env: map[string]string{"OP25B_METRICS_LISTEN": ":9625"}, check: func(t *testing.T, o options) {
			if o.MetricsListen != ":9625" {
				t.Errorf("metrics listen %q", o.MetricsListen)
			}
		}},
		{name: "bad metrics listener", args: []string{"--metrics-listen", "9625"}, wantErr: "--metrics-listen"},
		{name: "node id defaults to the host name", check: func(t *testing.T, o options) {
			if host, _ := os.Hostname(); o.NodeID != host {
				t.Errorf("node id %q, want the host name %q", o.NodeID, host)
			}
		}},
		{name: "node id with slash", args: []string{"--node-id", "a/b"}, wantErr: "--node-id"},
		{name: "short lease", args: []string{"--lease-ttl", "500ms"}, wantErr: "--lease-ttl"},
		{name: "unknown flag", args: []string{"--frobnicate"}, wantErr: "frobnicate"},
		{name: "positional argument", args: []string{"serve"}, wantErr: "unexpected argument"},
		{name: "default pipeline", check: func(t *testing.T, o options) {
			if o.Pipeline != flows.DefaultOptions() {
				t.Errorf("pipeline %+v, want flows.DefaultOptions()", o.Pipeline)
			}
		}},
		{name: "pipeline in front of an existing one", args: []string{"--first-table", "10"},
			env: map[string]string{"OP25B_CONTINUE": "goto:20"}, check: func(t *testing.T, o options) {
				want := flows.DefaultOptions()
				want.FirstTable, want.Continue = 10, flows.Actions{Goto: true, GotoTable: 20}
				if o.Pipeline != want {
					t.Errorf("pipeline %+v, want %+v", o.Pipeline, want)
				}
			}},
		{name: "continue goto inside op25b's tables", args: []string{"--first-table", "10", "--continue", "goto:12"}, wantErr: "after op25b's tables"},
		{name: "continue nonsense", args: []string{"--continue", "flood"}, wantErr: "--continue"},
		{name: "first table too high", args: []string{"--first-table", "253"}, wantErr: "--first-table"},
		{name: "first table leaves no room for five", args: []string{"--first-table", "251"}, wantErr: "must be 0..250 (op25b uses five consecutive tables)"},
		{name: "highest first table", args: []string{"--first-table", "250"}, check: func(t *testing.T, o options) {
			if o.Pipeline.FirstTable != 250 || o.Pipeline.OffenderTable() != 254 {
				t.Errorf("pipeline %+v", o.Pipeline)
			}
		}},
		{name: "offender bounds", args: []string{"--offenders-max-sources", "5000", "--offenders-max-flows", "20000"},
			env: map[string]string{"OP25B_OFFENDERS_RETENTION": "72h"}, check: func(t *testing.T, o options) {
				if o.Offenders.MaxSources != 5000 || o.Offenders.Retention != 72*time.Hour || o.Pipeline.OffenderFlows != 20000 {
					t.Errorf("offenders %+v, pipeline %+v", o.Offenders, o.Pipeline)
				}
			}},
		{name: "offender defaults", check: func(t *testing.T, o options) {
			if o.Offenders.MaxSources != 100000 || o.Offenders.Retention != 24*time.Hour || o.Pipeline.OffenderFlows != 50000 {
				t.Errorf("offenders %+v, pipeline %+v", o.Offenders, o.Pipeline)
			}
		}},
		{name: "no sources", args: []string{"--offenders-max-sources", "0"}, wantErr: "--offenders-max-sources 0"},
		{name: "retention too short", args: []string{"--offenders-retention", "30s"}, wantErr: "--offenders-retention"},
		{name: "retention too long", env: map[string]string{"OP25B_OFFENDERS_RETENTION": "9000h"}, wantErr: "OP25B_OFFENDERS_RETENTION (--offenders-retention)"},
		{name: "no learned flows", args: []string{"--offenders-max-flows", "0"}, wantErr: "--offenders-max-flows 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			o, err := parseFlags(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestVersionFlag(t *testing.T) {
	// --version wins over a bad variable: an operator asks which version
	// runs precisely when something is wrong.
	_, err := parseFlags([]string{"--version"}, func(k string) string { return map[string]string{"OP25B_LEASE_TTL": "x"}[k] }, io.Discard)
	if !errors.Is(err, errVersion) {
		t.Fatalf("err = %v, want errVersion", err)
	}
}

// Variables that set no flag are found, each with the flag it most
// resembles; op25bctl's own variables are not typos.
func TestStrayVariables(t *testing.T) {
	got := strayVariables([]string{
		"PATH=/usr/bin", "OP25B_AUDIT_INTERVALL=1m", "OP25B_ETCD_ENDPOINT=http://e:2379", "OP25B_AUDIT_INTERVAL=1m",
		"OP25B_TOKEN=secret", "OP25B_SERVER=http://x", "OP25B_LOGLEVEL=debug", "OP25B_METRICS=:9625",
	})
	want := []strayVariable{
		{"OP25B_AUDIT_INTERVALL", "audit-interval"},
		{"OP25B_ETCD_ENDPOINT", "etcd-endpoints"},
		{"OP25B_LOGLEVEL", "log-level"},
		{"OP25B_METRICS", "metrics-listen"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("strayVariables = %v, want %v", got, want)
	}
}

func TestHelpDocumentsEveryFlagAndItsVariable(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, f := range []string{"openflow-listen", "api-listen", "etcd-endpoints", "data-dir", "node-id",
		"api-token-file", "log-level", "audit-interval", "audit-sweep", "lease-ttl", "metrics-listen", "log-format", "version"} {
		if !strings.Contains(out.String(), "-"+f) {
			t.Errorf("--help does not document --%s", f)
		}
	}
	if !strings.Contains(out.String(), "OP25B_") {
		t.Errorf("--help does not mention the OP25B_* variables")
	}
	if envName("audit-interval") != "OP25B_AUDIT_INTERVAL" {
		t.Errorf("envName: %s", envName("audit-interval"))
	}
}
