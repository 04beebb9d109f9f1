package deb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/freeport"
)

// The package, installed on this machine: it builds with build.sh (what
// `make deb` runs), installs with dpkg -i, its unit passes systemd-analyze
// verify without a warning, the installed op25bd run the way the unit runs
// it (its environment file, its user without capabilities, its state
// directory and working directory, a NOTIFY_SOCKET) answers /readyz,
// reports READY=1 and, at SIGTERM, STOPPING=1 and exits 0; then dpkg -r
// removes it and keeps the conffile, and dpkg -P leaves nothing behind.
//
// PID 1 is not systemd on the test machines, so the unit's sandboxing
// (ProtectSystem, seccomp, ...) is checked by systemd-analyze only; the
// user, capabilities, umask, environment and notifications are real.
func TestPackage(t *testing.T) {
	requirePackaging(t)
	releaseLock := lockMachine(t)
	defer releaseLock()
	for _, leftover := range []func() bool{
		func() bool { return installed() != "" },
		func() bool { _, err := user.Lookup("op25b"); return err == nil },
		func() bool { _, err := os.Stat("/var/lib/op25b"); return err == nil },
	} {
		if leftover() {
			skipOrFail(t, "op25b (package, user or /var/lib/op25b) already exists on this machine; "+
				"the test would replace it. `dpkg -P op25b` first if it is a leftover")
		}
	}

	deb := buildPackage(t)
	name := filepath.Base(deb)
	fields := strings.Fields(run(t, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture"))
	if len(fields) != 6 || name != fmt.Sprintf("op25b_%s_%s.deb", fields[3], fields[5]) {
		t.Fatalf("package file %s does not match its control fields %v", name, fields)
	}
	t.Logf("built %s", name)
	listing := run(t, "dpkg-deb", "-c", deb)
	checkListing(t, listing)
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-I", deb, "conffiles")); got != "/etc/default/op25bd" {
		t.Errorf("conffiles = %q, want /etc/default/op25bd", got)
	}

	var daemon *exec.Cmd // the running op25bd, if any
	t.Cleanup(func() {
		// Whatever failed: stop op25bd, then purge everything the package
		// and the service made.
		if daemon != nil && daemon.ProcessState == nil {
			_ = daemon.Process.Kill()
			_ = daemon.Wait()
		}
		if installed() != "" {
			if out, err := exec.Command("dpkg", "-P", "op25b").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg -P op25b: %v\n%s", err, out)
			}
		}
		_ = os.RemoveAll("/var/lib/op25b")
	})
	run(t, "dpkg", "-i", deb)
	if st := installed(); st != "install ok installed" {
		t.Fatalf("after dpkg -i: status %q", st)
	}
	u, err := user.Lookup("op25b")
	if err != nil {
		t.Fatalf("postinst made no op25b user: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || uid == 0 {
		t.Errorf("op25b has uid %d, want a system user", uid)
	}
	if v := run(t, "/usr/bin/op25bd", "--version"); !strings.HasPrefix(v, "op25bd version ") || strings.Contains(v, "commit unknown") {
		t.Errorf("installed op25bd --version = %q: the build did not stamp it", v)
	}
	if v := run(t, "/usr/bin/op25bctl", "--version"); !strings.HasPrefix(v, "op25bctl version ") {
		t.Errorf("installed op25bctl --version = %q", v)
	}

	const unitPath = "/lib/systemd/system/op25bd.service"
	if out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
	unit := readUnit(t, unitPath)
	for key, want := range map[string]string{
		"Type": "notify", "User": "op25b", "Group": "op25b", "StateDirectory": "op25b",
		"EnvironmentFile": "-/etc/default/op25bd", "ExecStart": "/usr/bin/op25bd", "WorkingDirectory": "/var/lib/op25b",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "UMask": "0077",
	} {
		if got, ok := unit[key]; !ok || got != want {
			t.Errorf("unit %s=%q, want %q", key, got, want)
		}
	}
	checkManAndCompletion(t)

	// Start /usr/bin/op25bd as systemd would: StateDirectory made and
	// owned by the user, EnvironmentFile, User/Group without
	// capabilities, NoNewPrivileges, UMask, WorkingDirectory,
	// NOTIFY_SOCKET. Only the listen addresses are the test's own, so
	// it cannot collide with anything on the machine.
	stateDir := "/var/lib/op25b"
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(stateDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	notify := listenNotify(t)
	ports, err := freeport.Loopback(2)
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + u.HomeDir, "USER=op25b", "LOGNAME=op25b", "NOTIFY_SOCKET=" + notify.path}
	env = append(env, environmentFile(t, strings.TrimPrefix(unit["EnvironmentFile"], "-"))...)
	env = append(env, "OP25B_API_LISTEN="+apiAddr, "OP25B_OPENFLOW_LISTEN=127.0.0.1:0", "OP25B_METRICS_LISTEN="+metricsAddr)
	daemon = exec.Command("/bin/sh", "-c", `umask "$1"; shift; exec "$@"`, "sh", unit["UMask"],
		"setpriv", "--reuid="+u.Uid, "--regid="+u.Gid, "--init-groups", "--no-new-privs",
		"--bounding-set=-all", "--inh-caps=-all", "--", unit["ExecStart"])
	daemon.Env = env
	daemon.Dir = unit["WorkingDirectory"]
	var logBuf syncBuffer
	daemon.Stdout, daemon.Stderr = &logBuf, &logBuf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		if t.Failed() {
			t.Logf("installed op25bd's log:\n%s", logBuf.String())
		}
	}()

	if !notify.wait("READY=1", 90*time.Second) {
		t.Fatalf("no READY=1 on NOTIFY_SOCKET within 90s; got %q", notify.all())
	}
	if code := httpGet(t, "http://"+apiAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d after READY=1", code)
	}
	if code := httpGet(t, "http://"+metricsAddr+"/metrics"); code != http.StatusOK {
		t.Errorf("metrics listener /metrics = %d", code)
	}
	if out, err := exec.Command("/usr/bin/op25bctl", "--server", "http://"+apiAddr, "status").CombinedOutput(); err != nil {
		t.Errorf("installed op25bctl status: %v\n%s", err, out)
	}
	dataDir := filepath.Join(stateDir, "etcd")
	if fi, err := os.Stat(dataDir); err != nil {
		t.Errorf("the default file's OP25B_DATA_DIR: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s: uid %d mode %v, want op25b's (%d) and closed to others", dataDir, st.Uid, fi.Mode().Perm(), uid)
	}

	start := time.Now()
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("op25bd after SIGTERM: %v, want exit 0", err)
		}
		t.Logf("installed op25bd stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatalf("installed op25bd still running 5s after SIGTERM")
	}
	if !notify.wait("STOPPING=1", 5*time.Second) {
		t.Errorf("no STOPPING=1 on NOTIFY_SOCKET; got %q", notify.all())
	}
	if msgs := notify.all(); indexOf(msgs, "READY=1") > indexOf(msgs, "STOPPING=1") {
		t.Errorf("notifications out of order: %q", msgs)
	}

	// dpkg -r: the files go, the conffile stays; dpkg -P: nothing stays.
	run(t, "dpkg", "-r", "op25b")
	if st := installed(); st != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: status %q, want config-files", st)
	}
	if _, err := os.Stat("/usr/bin/op25bd"); err == nil {
		t.Errorf("/usr/bin/op25bd still there after dpkg -r")
	}
	if _, err := os.Stat("/etc/default/op25bd"); err != nil {
		t.Errorf("dpkg -r removed the conffile: %v", err)
	}
	run(t, "dpkg", "-P", "op25b")
	if st := installed(); st != "" {
		t.Errorf("after dpkg -P: status %q, want unknown to dpkg", st)
	}
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue // directories are shared (/usr/bin, /etc/default)
		}
		path := strings.TrimPrefix(f[5], ".")
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("%s left after dpkg -P", path)
		}
	}
	for _, path := range []string{"/var/lib/op25b", "/usr/share/doc/op25b"} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s left after dpkg -P", path)
		}
	}
	if _, err := user.Lookup("op25b"); err == nil {
		t.Errorf("user op25b left after dpkg -P")
	}
	if _, err := user.LookupGroup("op25b"); err == nil {
		t.Errorf("group op25b left after dpkg -P")
	}
}

// skipOrFail skips on a developer machine and fails under CI, where every
// prerequisite is installed by `make deps`.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func requirePackaging(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the package test installs and removes a package")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "the package test installs a package: run it as root")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-analyze", "setpriv", "adduser", "go", "git", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" is missing: "+err.Error())
		}
	}
}

// lockMachine serializes package tests across processes (two checkouts
// testing at once would install over each other).
func lockMachine(t *testing.T) func() {
	f, err := os.OpenFile("/run/lock/op25b-package-test.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// installed is dpkg's status of op25b ("install ok installed"), "" when
// dpkg does not know it.
func installed() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "op25b").Output()
	if err != nil {
		return ""
	}
	if s := strings.TrimSpace(string(out)); s != "unknown ok not-installed" {
		return s
	}
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	// dpkg refuses at once while another dpkg or apt (an unattended
	// upgrade, a provisioning step) holds its lock: wait for it, as apt's
	// DPkg::Lock::Timeout would, instead of failing the test.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cmd := exec.Command(name, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err == nil {
			return string(out)
		}
		if name == "dpkg" && strings.Contains(stderr.String(), "lock") && time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
}

func buildPackage(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("./build.sh", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(stdout))
	if _, err := os.Stat(deb); err != nil || filepath.Dir(deb) != out {
		t.Fatalf("build.sh printed %q: %v", deb, err)
	}
	return deb
}

// checkListing: the files the package must hold, with their modes.
func checkListing(t *testing.T, listing string) {
	t.Helper()
	modes := map[string]string{}
	for _, line := range strings.Split(listing, "\n") {
		if f := strings.Fields(line); len(f) >= 6 {
			modes[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
		}
	}
	for path, want := range map[string]string{
		"/usr/bin/op25bd":                                 "-rwxr-xr-x root/root",
		"/usr/bin/op25bctl":                               "-rwxr-xr-x root/root",
		"/lib/systemd/system/op25bd.service":              "-rw-r--r-- root/root",
		"/etc/default/op25bd":                             "-rw-r--r-- root/root",
		"/usr/share/man/man8/op25bd.8.gz":                 "-rw-r--r-- root/root",
		"/usr/share/man/man1/op25bctl.1.gz":               "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/op25bd":   "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/op25bctl": "-rw-r--r-- root/root",
		"/usr/share/doc/op25b/copyright":                  "-rw-r--r-- root/root",
		"/usr/share/doc/op25b/docs/operations.md":         "-rw-r--r-- root/root",
	} {
		if got := modes[path]; got != want {
			t.Errorf("package entry %s: %q, want %q", path, got, want)
		}
	}
	if t.Failed() {
		t.Logf("dpkg-deb -c:\n%s", listing)
	}
}

// readUnit returns the unit's settings (the last value of each key).
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// environmentFile reads KEY=VALUE lines as systemd's EnvironmentFile does
// (comments and blank lines skipped, surrounding quotes removed).
func environmentFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=VALUE: %q", path, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env = append(env, strings.TrimSpace(k)+"="+v)
	}
	if len(env) == 0 {
		t.Fatalf("%s sets nothing", path)
	}
	return env
}

// checkManAndCompletion: man finds both pages and groff renders them
// without a warning; the installed completion completes.
func checkManAndCompletion(t *testing.T) {
	t.Helper()
	for _, page := range []string{"/usr/share/man/man8/op25bd.8.gz", "/usr/share/man/man1/op25bctl.1.gz"} {
		if _, err := exec.LookPath("groff"); err != nil {
			break
		}
		out, err := exec.Command("sh", "-c", "zcat "+page+" | groff -man -Tutf8 -ww -z").CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s: groff -ww: %v\n%s", page, err, out)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		for _, name := range []string{"op25bd", "op25bctl"} {
			if out, err := exec.Command("man", "-w", name).CombinedOutput(); err != nil {
				t.Errorf("man -w %s: %v %s", name, err, out)
			}
		}
	}
	prog := `source /usr/share/bash-completion/completions/op25bctl
COMP_WORDS=(op25bctl ap); COMP_CWORD=1; _op25bctl; echo "${COMPREPLY[@]}"
source /usr/share/bash-completion/completions/op25bd
COMP_WORDS=(op25bd --log-f); COMP_CWORD=1; _op25bd; echo "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "--norc", "-c", prog).CombinedOutput()
	if err != nil || string(out) != "apply\n--log-format\n" {
		t.Errorf("installed bash completion: %v %q, want apply and --log-format", err, out)
	}
}

// notifySocket is a test NOTIFY_SOCKET: a unixgram socket the op25b user
// may write to, and the messages received.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
	got  chan struct{} // poked at every message
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "op25b-notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the op25b user must reach the socket
		t.Fatal(err)
	}
	n := &notifySocket{path: filepath.Join(dir, "notify"), got: make(chan struct{}, 1)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(n.path, 0o666); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, strings.Split(strings.TrimSpace(string(buf[:k])), "\n")...)
			n.mu.Unlock()
			select {
			case n.got <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

func (n *notifySocket) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

func (n *notifySocket) wait(msg string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for indexOf(n.all(), msg) < 0 {
		select {
		case <-n.got:
		case <-deadline:
			return false
		}
	}
	return true
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func httpGet(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// syncBuffer is a bytes.Buffer the daemon's two output streams share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
