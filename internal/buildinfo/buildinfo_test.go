package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, modified string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name            string
		version, commit string
		read            func() (*debug.BuildInfo, bool)
		want            Info
	}{
		{"make build", "v0.1.0-3-gabcdef0", "abcdef0123456789abcdef0123456789abcdef01", vcs("ffff", "false"),
			Info{"v0.1.0-3-gabcdef0", "abcdef0123456789abcdef0123456789abcdef01", "go1.99"}},
		{"plain go build in the repository", "", "", vcs("0123456789abcdef0123", "false"),
			Info{"dev-0123456789ab", "0123456789abcdef0123", "go1.99"}},
		{"plain go build, uncommitted changes", "", "", vcs("0123456789abcdef0123", "true"),
			Info{"dev-0123456789ab-dirty", "0123456789abcdef0123", "go1.99"}},
		{"go install at a version", "", "", func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.2.0"}}, true
		}, Info{"v0.2.0", "unknown", "go1.99"}},
		{"nothing known", "", "", none, Info{"dev", "unknown", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.version, tt.commit, tt.read)
			if tt.want.GoVersion == "" {
				tt.want.GoVersion = got.GoVersion // runtime.Version()
				if !strings.HasPrefix(got.GoVersion, "go") {
					t.Errorf("GoVersion %q", got.GoVersion)
				}
			}
			if got != tt.want {
				t.Errorf("resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
	if l := (Info{"v1", "c", "go1"}).Line("op25bd"); l != "op25bd version v1, commit c, built with go1" {
		t.Errorf("Line = %q", l)
	}
}
