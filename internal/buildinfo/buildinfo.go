// Package buildinfo says which op25b this is: the version `make build`
// stamps into the binaries (git describe), the commit and the Go version.
// Both binaries print it with --version, op25bd exports it as the
// op25b_build_info metric and registers it in etcd, so `op25bctl status`
// shows which version every replica runs during a rolling upgrade.
//
// `make build` sets the version and commit with
//
//	-ldflags "-X github.com/op25b/op25b/internal/buildinfo.version=$(git describe --tags --always --dirty)
//	          -X github.com/op25b/op25b/internal/buildinfo.commit=$(git rev-parse HEAD)"
//
// A plain `go build` inside the repository still knows its commit: the
// Go toolchain records the VCS revision, which Read falls back to.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker (-X); empty in a plain `go build`.
var (
	version string
	commit  string
)

// Info identifies a build.
type Info struct {
	Version   string // git describe of the build, "dev" when unknown
	Commit    string // full commit hash, "unknown" when unknown
	GoVersion string // runtime.Version() of the toolchain that built it
}

// Read returns this binary's build information: the linker-set values
// first, then the VCS stamp of the Go toolchain (debug.ReadBuildInfo).
func Read() Info {
	return resolve(version, commit, readBuildInfo)
}

func readBuildInfo() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

// resolve is Read with its inputs as parameters, for tests.
func resolve(version, commit string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := read(); ok {
		var revision, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if info.Commit == "" {
			info.Commit = revision
		}
		if info.Version == "" {
			switch {
			case bi.Main.Version != "" && bi.Main.Version != "(devel)":
				info.Version = bi.Main.Version // go install ...@vX.Y.Z
			case len(revision) >= 12:
				info.Version = "dev-" + revision[:12]
				if modified == "true" {
					info.Version += "-dirty"
				}
			}
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

// String is the --version output of program, one line.
func (i Info) String() string {
	return fmt.Sprintf("version %s, commit %s, built with %s", i.Version, i.Commit, i.GoVersion)
}

// Line is the whole --version line: "op25bd version v0.1.0, commit ..., built with go1.26.8".
func (i Info) Line(program string) string { return program + " " + i.String() }
