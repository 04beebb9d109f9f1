package main

import (
	"io"

	"github.com/op25b/op25b/internal/buildinfo"
	"github.com/op25b/op25b/internal/clidoc"
)

// generateDocs answers the hidden `op25bd __doc man|bash-completion`
// (packaging/deb/build.sh) from the flag definitions op25bd parses.
func generateDocs(args []string, stdout, stderr io.Writer) (int, bool) {
	return clidoc.Generate(args, docPage, stdout, stderr)
}

func docPage() clidoc.Page {
	return clidoc.Page{
		Name:     "op25bd",
		Section:  "8",
		Summary:  "op25b controller: Outbound Port 25 Blocking on Open vSwitch bridges",
		Version:  buildinfo.Read().Version,
		Synopsis: []string{"[flags]"},
		Description: []string{
			"op25bd is an OpenFlow 1.3 controller that drops TCP port 25 leaving dynamic-IP subscriber pools " +
				"towards outside mail servers, while the ISP's own relays, fixed-IP plans and every other port keep working. " +
				"The desired state is one policy document in etcd; several op25bd replicas share it, elect one master per bridge " +
				"and serve a REST API (op25bctl is its client).",
			"Without --etcd-endpoints op25bd runs an embedded single-node etcd in --data-dir. Replicas given the same " +
				"--etcd-endpoints form one cluster; each bridge lists one controller target per replica.",
			"A stop (SIGTERM, SIGINT) hands mastership over to another replica at once; the flows stay on the switches, " +
				"which run in fail-mode secure. Under systemd (Type=notify) op25bd reports READY=1 once it can serve " +
				"(the document is loaded, etcd answers, its lease is held) and STOPPING=1 when a stop begins.",
		},
		Flags: newFlagSet(&options{}, &rawFlags{}),
		FlagEnv: func(name string) string {
			if name == "version" {
				return "" // the command line only
			}
			return envName(name)
		},
		Values: map[string][]string{
			"log-level":  {"debug", "info", "warn", "error"},
			"log-format": {"text", "json"},
			"continue":   {"normal", "goto:"},
		},
		Sections: []clidoc.Section{
			{Title: "Environment", Paragraphs: []string{
				"Every flag can also be set with an OP25B_<FLAG> variable, dashes as underscores (OP25B_ETCD_ENDPOINTS); " +
					"a flag on the command line wins. An OP25B_ variable that matches no flag is logged as a warning " +
					"naming the closest flag, and ignored. A bad value is an error naming the variable.",
				"NOTIFY_SOCKET, set by systemd, receives the readiness notifications.",
			}},
			{Title: "Signals", Paragraphs: []string{
				"SIGTERM and SIGINT stop op25bd: it leaves the cluster (mastership moves at once), stops serving the API, " +
					"closes the switch sessions, then stops the embedded etcd. Exit status 0.",
				"SIGHUP re-reads the token file and every certificate, key and CA. New connections use the new files; " +
					"established switch sessions and etcd streams are kept. A file that fails to load keeps the previous one.",
			}},
			{Title: "Files", Paragraphs: []string{
				"/etc/default/op25bd: the OP25B_ variables of the op25bd.service unit (Debian package).",
				"/var/lib/op25b: the embedded etcd's data when the unit runs without --etcd-endpoints.",
			}},
			{Title: "Exit status", Paragraphs: []string{
				"0 after a stop by signal, --help or --version; 1 when a part of the daemon fails; 2 for a bad flag or variable.",
			}},
			{Title: "See also", Paragraphs: []string{
				"op25bctl(1); /usr/share/doc/op25b/ (docs/operations.md: flags, certificates, rolling upgrades, backups; " +
					"docs/semantics.md; docs/policy-document.md; docs/rest-api.md).",
			}},
		},
	}
}
