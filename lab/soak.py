#!/usr/bin/python3
"""op25b chaos soak: the lab of lab.py (two subscriber bridges, a core,
real SMTP servers) with three op25bd replicas on a three-member etcd, TLS
everywhere, while a seeded fault injector breaks things, a writer changes
the policy and probers connect from every host. lab/soakctl checks the
history afterwards (package lab/soak). See lab/README.md, "The chaos soak".

Run through lab/soak.sh (`make soak`): it gives the soak its own network
namespace, in which this script starts its own ovsdb-server and
ovs-vswitchd (private OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR), so restarting
"ovs-vswitchd" restarts only the soak's switch daemon and nothing the soak
does touches the host's Open vSwitch, loopback ports or bridges.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402  (the lab's topology, hosts and servers)

LAB_DIR = lab.LAB_DIR
REPO = lab.REPO
REPLICAS = 3
ETCD_MEMBERS = 3
COOKIE = "cookie=0x25b0000000000000/0xffff000000000000"  # op25b's flows (flows/cookie.go)


def log(msg):
    print("soak: %s %s" % (datetime.datetime.now().strftime("%H:%M:%S"), msg), flush=True)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def go_duration(text):
    """3m, 30m, 90s, 1h30m -> seconds."""
    total, num = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for ch in text.strip():
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            raise ValueError("duration %r: want e.g. 3m or 30m" % text)
    if num:
        raise ValueError("duration %r: a unit is missing" % text)
    return total


class PrivateOVS:
    """ovsdb-server and ovs-vswitchd of the soak alone, in its own dirs."""

    def __init__(self, tmp, cleanup):
        self.dir = os.path.join(tmp, "ovs")
        os.makedirs(self.dir)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            os.environ[var] = self.dir
        db = os.path.join(self.dir, "conf.db")
        subprocess.run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"], check=True)
        subprocess.run(["ovsdb-server", db, "--remote=punix:" + self.sock,
                        "--pidfile=" + self.pidfile("ovsdb-server"), "--detach", "--no-chdir",
                        "--log-file=" + os.path.join(self.dir, "ovsdb-server.log")], check=True,
                       capture_output=True)
        cleanup.add("ovsdb-server", lambda: self.kill("ovsdb-server", signal.SIGTERM))
        subprocess.run(["ovs-vsctl", "--no-wait", "init"], check=True)
        self.start_vswitchd()
        cleanup.add("ovs-vswitchd", lambda: self.kill("ovs-vswitchd", signal.SIGTERM))

    @property
    def sock(self):
        return os.path.join(self.dir, "db.sock")

    def pidfile(self, name):
        return os.path.join(self.dir, name + ".pid")

    def start_vswitchd(self):
        subprocess.run(["ovs-vswitchd", "unix:" + self.sock, "--pidfile=" + self.pidfile("ovs-vswitchd"),
                        "--detach", "--no-chdir", "--log-file=" + os.path.join(self.dir, "ovs-vswitchd.log")],
                       check=True, capture_output=True)

    def kill(self, name, sig):
        try:
            with open(self.pidfile(name)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


class PKI:
    """scripts/lab-ca.sh's CA and certificates; rotate() re-issues every
    certificate from the same CA and swaps the files in atomically."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pki")
        subprocess.run(["sh", os.path.join(REPO, "scripts", "lab-ca.sh"), self.dir], check=True,
                       capture_output=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def rotate(self):
        fresh = self.dir + ".new"
        shutil.rmtree(fresh, ignore_errors=True)
        os.makedirs(fresh)
        for f in ("ca.pem", "ca-key.pem", "ca.srl"):
            if os.path.exists(self.path(f)):
                shutil.copy2(self.path(f), os.path.join(fresh, f))
        subprocess.run(["sh", os.path.join(REPO, "scripts", "lab-ca.sh"), "--reissue", fresh], check=True,
                       capture_output=True)
        for f in sorted(os.listdir(fresh)):
            if f.endswith("-cert.pem") or (f.endswith("-key.pem") and f != "ca-key.pem"):
                os.replace(os.path.join(fresh, f), self.path(f))
        shutil.copy2(os.path.join(fresh, "ca.srl"), self.path("ca.srl"))
        shutil.rmtree(fresh, ignore_errors=True)

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        ctx.load_cert_chain(self.path("noc-cert.pem"), self.path("noc-key.pem"))
        return ctx


def wait_https(url, ctx, timeout):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3, context=ctx) as r:
                if r.status == 200:
                    return True
        except Exception:
            pass
        if time.time() > deadline:
            return False
        time.sleep(0.5)


class Proc:
    """A process the soak can stop, kill and start again with the same
    command line, its output appended to one log."""

    def __init__(self, name, cmd, logpath):
        self.name, self.cmd, self.logpath, self.p = name, cmd, logpath, None
        self.lock = threading.Lock()

    def start(self):
        logf = open(self.logpath, "a")
        self.p = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.p is None or self.p.poll() is not None:
            return
        self.p.send_signal(sig)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log("%s did not stop on %s, killing" % (self.name, sig))
            self.p.kill()
            self.p.wait()

    def alive(self):
        return self.p is not None and self.p.poll() is None


class Soak:
    def __init__(self, args, tmp, rec, cleanup):
        self.args, self.tmp, self.rec, self.cleanup = args, tmp, rec, cleanup
        self.bin = args.bin_dir
        self.soakctl = os.path.join(tmp, "soakctl")
        self.faults_out = open(os.path.join(rec, "faults.jsonl"), "a")
        self.faults_lock = threading.Lock()
        self.locks = {}

    # ---------------------------------------------------------------- setup

    def build(self):
        env = dict(os.environ, GOFLAGS="-mod=mod")
        go = shutil.which("go") or "/usr/local/go/bin/go"
        subprocess.run([go, "build", "-o", self.soakctl, "./lab/soakctl"], cwd=REPO, env=env, check=True)

    def start_etcd(self):
        pki = self.pki
        ports = [(lab.free_port(), lab.free_port()) for _ in range(ETCD_MEMBERS)]
        self.etcd_client_ports = [c for c, _ in ports]
        cluster = ",".join("m%d=https://127.0.0.1:%d" % (i, p) for i, (_c, p) in enumerate(ports))
        self.etcd = []
        for i, (client, peer) in enumerate(ports):
            cmd = ["/usr/bin/etcd", "--name", "m%d" % i, "--data-dir", os.path.join(self.tmp, "etcd-%d" % i),
                   "--listen-client-urls", "https://127.0.0.1:%d" % client,
                   "--advertise-client-urls", "https://127.0.0.1:%d" % client,
                   "--listen-peer-urls", "https://127.0.0.1:%d" % peer,
                   "--initial-advertise-peer-urls", "https://127.0.0.1:%d" % peer,
                   "--initial-cluster", cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", "op25b-soak",
                   "--cert-file", pki.path("etcd-cert.pem"), "--key-file", pki.path("etcd-key.pem"),
                   "--trusted-ca-file", pki.path("ca.pem"), "--client-cert-auth",
                   "--peer-cert-file", pki.path("etcd-cert.pem"), "--peer-key-file", pki.path("etcd-key.pem"),
                   "--peer-trusted-ca-file", pki.path("ca.pem"), "--peer-client-cert-auth"]
            p = Proc("etcd m%d" % i, cmd, os.path.join(self.rec, "etcd-%d.log" % i))
            p.start()
            self.cleanup.add(p.name, p.stop)
            self.etcd.append(p)
        ctx = pki.ssl_context()
        for c in self.etcd_client_ports:
            if not wait_https("https://127.0.0.1:%d/health" % c, ctx, 60):
                raise RuntimeError("etcd on port %d not healthy" % c)
        log("etcd: %d members, TLS with client certificates" % ETCD_MEMBERS)

    def start_proxy(self):
        """One proxy process for every replica->etcd and switch->replica path."""
        self.of_ports = [lab.free_port() for _ in range(REPLICAS)]
        self.api_ports = [lab.free_port() for _ in range(REPLICAS)]
        paths, self.etcd_via, self.of_via = [], {}, {}
        for r in range(REPLICAS):
            eps = []
            for m, port in enumerate(self.etcd_client_ports):
                lp = lab.free_port()
                paths.append("etcd-r%d-m%d=127.0.0.1:%d>127.0.0.1:%d" % (r, m, lp, port))
                eps.append("https://127.0.0.1:%d" % lp)
            self.etcd_via[r] = ",".join(eps)
        for br in lab.BRIDGES:
            targets = []
            for r in range(REPLICAS):
                lp = lab.free_port()
                paths.append("of-%s-r%d=127.0.0.1:%d>127.0.0.1:%d" % (br, r, lp, self.of_ports[r]))
                targets.append("ssl:127.0.0.1:%d" % lp)
            self.of_via[br] = ",".join(targets)
        self.proxy_control = "127.0.0.1:%d" % lab.free_port()
        p = Proc("proxy", [self.soakctl, "proxy", "-paths", ",".join(paths), "-control", self.proxy_control],
                 os.path.join(self.rec, "proxy.log"))
        p.start()
        self.cleanup.add("proxy", p.stop)
        deadline = time.time() + 30
        while "control on" not in open(p.logpath).read():
            if time.time() > deadline or not p.alive():
                raise RuntimeError("proxy did not start: " + open(p.logpath).read())
            time.sleep(0.2)

    def proxy(self, verb, prefix):
        req = urllib.request.Request("http://%s/%s?path=%s" % (self.proxy_control, verb, prefix), method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def start_replicas(self):
        pki = self.pki
        self.token = secrets.token_hex(16)
        self.token_file = os.path.join(self.tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        tokens = os.path.join(self.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("soak-writer %s write\n" % self.token)
        os.chmod(tokens, 0o600)  # op25bd refuses a token file others can read
        self.replicas = []
        for r in range(REPLICAS):
            cmd = [os.path.join(self.bin, "op25bd"),
                   "--openflow-listen", "127.0.0.1:%d" % self.of_ports[r],
                   "--api-listen", "127.0.0.1:%d" % self.api_ports[r],
                   "--node-id", "soak-r%d" % r, "--data-dir", os.path.join(self.tmp, "op25bd-%d" % r),
                   "--audit-interval", "5s", "--lease-ttl", "5s",
                   "--etcd-endpoints", self.etcd_via[r],
                   "--etcd-cert", pki.path("op25bd-cert.pem"), "--etcd-key", pki.path("op25bd-key.pem"),
                   "--etcd-ca", pki.path("ca.pem"),
                   "--openflow-tls-cert", pki.path("controller-cert.pem"),
                   "--openflow-tls-key", pki.path("controller-key.pem"), "--openflow-tls-ca", pki.path("ca.pem"),
                   "--api-tls-cert", pki.path("controller-cert.pem"), "--api-tls-key", pki.path("controller-key.pem"),
                   "--api-tls-client-ca", pki.path("ca.pem"), "--api-token-file", tokens]
            p = Proc("op25bd r%d" % r, cmd, os.path.join(self.rec, "op25bd-%d.log" % r))
            p.start()
            self.cleanup.add(p.name, p.stop)
            self.replicas.append(p)
        for r in range(REPLICAS):
            self.wait_ready(r, 90)
        self.servers = ",".join("https://127.0.0.1:%d" % p for p in self.api_ports)
        log("op25bd: %d replicas ready (API over HTTPS with a token and client certificates)" % REPLICAS)

    def wait_ready(self, r, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline and self.replicas[r].alive():
            if wait_https("https://127.0.0.1:%d/readyz" % self.api_ports[r], self.pki.ssl_context(), 2):
                return
        if not wait_https("https://127.0.0.1:%d/readyz" % self.api_ports[r], self.pki.ssl_context(), timeout):
            raise RuntimeError("op25bd r%d not ready after %ds" % (r, timeout))

    def ctl(self, *args, check=True, timeout=150):
        pki = self.pki
        cmd = [os.path.join(self.bin, "op25bctl"), "--server", "https://127.0.0.1:%d" % self.api_ports[0],
               "--token", self.token, "--ca", pki.path("ca.pem"), "--cert", pki.path("noc-cert.pem"),
               "--key", pki.path("noc-key.pem")] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("op25bctl %s: exit %d: %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def api_flags(self):
        pki = self.pki
        return ["-servers", self.servers, "-ca", pki.path("ca.pem"), "-cert", pki.path("noc-cert.pem"),
                "-key", pki.path("noc-key.pem"), "-token-file", self.token_file]

    def setup(self):
        self.build()
        self.ovs = PrivateOVS(self.tmp, self.cleanup)
        self.pki = PKI(self.tmp)
        subprocess.run(["ovs-vsctl", "set-ssl", self.pki.path("switch-key.pem"), self.pki.path("switch-cert.pem"),
                        self.pki.path("ca.pem")], check=True)
        log("private Open vSwitch in %s, OpenFlow over TLS (ovs-vsctl set-ssl)" % self.ovs.dir)
        self.net = lab.build_network()
        self.cleanup.add("mininet", self.net.stop)
        self.net.start()
        for name, (_sw, v4, v6) in lab.SUBSCRIBERS.items():
            lab.configure_host(self.net.get(name), v4, v6)
        for name, (v4, v6) in lab.SERVERS.items():
            lab.configure_host(self.net.get(name), v4, v6)
        for name, (_sw, v4, v6, _n, _dsts) in getattr(lab, "BOTS", {}).items():
            lab.configure_host(self.net.get(name), v4, v6)  # the lab's offender hosts: idle in the soak
        self.records = lab.start_servers(self.net, self.tmp, self.cleanup)
        log("topology up: %s, servers up" % ", ".join(lab.BRIDGES))
        self.start_etcd()
        self.start_proxy()
        self.start_replicas()
        for br in lab.BRIDGES:
            self.ctl("ovs", "attach", br, "--controllers", self.of_via[br])
        r = self.ctl("apply", "-f", os.path.join(LAB_DIR, "policy.json"))
        msg = " ".join((r.stdout + r.stderr).split())
        m = re.search(r"revision\D*(\d+)", msg)
        if not m:
            raise RuntimeError("op25bctl apply: no revision in %r" % msg)
        self.ctl("status", "--wait-revision", m.group(1), "--timeout", "120s")
        log("bridges attached over ssl: through the proxies, policy in force")

    # --------------------------------------------------------------- actors

    def start_probers(self):
        self.probers = []
        targets = []
        for server, port, proto in lab.SERVICES:
            if proto == "http":
                continue
            v4, v6 = lab.SERVERS[server]
            targets += ["%s=%s:%d" % (server, v4, port), "%s=[%s]:%d" % (server, v6, port)]
        for name, (sw, v4, v6) in lab.SUBSCRIBERS.items():
            out = os.path.join(self.rec, "probes-%s.jsonl" % name)
            logf = open(os.path.join(self.rec, "prober-%s.log" % name), "w")
            p = self.net.get(name).popen([self.soakctl, "probe", "-host", name, "-bridge", sw,
                                          "-pop", lab.BRIDGES[sw][1], "-src4", v4, "-src6", v6,
                                          "-targets", ",".join(targets), "-out", out],
                                         stdout=logf, stderr=subprocess.STDOUT)
            self.cleanup.add("prober " + name, lambda p=p, n=name: lab.stop_process(p, "prober " + n))
            self.probers.append(p)
        log("probers: %d hosts x %d targets (TCP connect, 3 s timeout)" % (len(self.probers), len(targets)))

    SWAKS_ROWS = [("fixed", "relay", 587, "v4"), ("dyn1", "extmx", 25, "v4"), ("nopool", "extmx", 25, "v6"),
                  ("lite2", "mobmx", 25, "v4"), ("dyn2", "relay", 25, "v4"), ("lite1", "extmx", 465, "v6")]

    def start_swaks(self):
        """A few full SMTP transactions (swaks, the message must arrive at
        the server) beside the TCP probers, one every 10 s in turn over
        SWAKS_ROWS, recorded like the probers' results."""
        self.swaks_stop = threading.Event()
        out = open(os.path.join(self.rec, "probes-swaks.jsonl"), "a")

        def loop():
            i = 0
            while not self.swaks_stop.is_set():
                src, server, port, fam = self.SWAKS_ROWS[i % len(self.SWAKS_ROWS)]
                i += 1
                sw, v4, v6 = lab.SUBSCRIBERS[src]
                s_ip, d_ip = (v4, lab.SERVERS[server][0]) if fam == "v4" else (v6, lab.SERVERS[server][1])
                proto = next(p for (sv, pt, p) in lab.SERVICES if sv == server and pt == port)
                start = now_iso()
                verdict, detail = lab.probe(self.net, self.records, src, server, port, proto, d_ip, timeout=10)
                rec = {"host": src, "bridge": sw, "pop": lab.BRIDGES[sw][1], "src": s_ip, "dst": d_ip,
                       "server": server, "port": port, "start": start, "end": now_iso(),
                       "verdict": verdict, "detail": ("swaks " + detail).strip()}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                self.swaks_stop.wait(10)

        self.swaks_thread = threading.Thread(target=loop, daemon=True)
        self.swaks_thread.start()

    def stop_swaks(self):
        self.swaks_stop.set()
        self.swaks_thread.join(timeout=60)

    def start_writer(self):
        cmd = [self.soakctl, "write"] + self.api_flags() + ["-dir", self.rec, "-seed", str(self.args.seed),
                                                           "-interval", "3s"]
        self.writer = Proc("writer", cmd, os.path.join(self.rec, "writer.log"))
        self.writer.start()
        self.cleanup.add("writer", self.writer.stop)

    # --------------------------------------------------------------- faults

    def record(self, kind, target, start, end, error=""):
        ev = {"kind": kind, "target": target, "start": start, "end": end}
        if error:
            ev["error"] = error
        with self.faults_lock:
            self.faults_out.write(json.dumps(ev) + "\n")
            self.faults_out.flush()

    # The groups of lab/soak/plan.go: faults of one group never overlap. The
    # plan spaces them out; these locks keep it so when a fault takes longer
    # than planned (a slow restart), by starting the next one late (its real
    # start is what faults.jsonl records). A loss of quorum also holds the
    # replicas' lock, and wiping or altering flows waits for ovs-vswitchd.
    GROUP_LOCKS = {
        "kill9-replica": ["replica"], "rolling-restart": ["replica"], "partition-etcd": ["replica"],
        "partition-switch": ["replica"], "etcd-member": ["etcd"], "etcd-quorum": ["etcd", "replica"],
        "vswitchd-restart": ["vswitchd"], "flows-wipe": ["flows", "vswitchd"],
        "flows-alter": ["flows", "vswitchd"], "sighup-certs": ["certs"],
    }

    def run_fault(self, f):
        kind, target, hold = f["kind"], f.get("target", ""), f["hold"] / 1e9
        locks = [self.locks.setdefault(n, threading.Lock()) for n in sorted(self.GROUP_LOCKS[kind])]
        for lk in locks:
            lk.acquire()
        try:
            start, err = now_iso(), ""
            log("fault %s %s (hold %.1fs)" % (kind, target, hold))
            try:
                getattr(self, "fault_" + kind.replace("-", "_"))(target, hold)
            except Exception as e:  # recorded; the soak goes on
                err = str(e)[:300]
                log("fault %s %s: error: %s" % (kind, target, err))
            self.record(kind, target, start, now_iso(), err)
        finally:
            for lk in reversed(locks):
                lk.release()

    def fault_kill9_replica(self, target, hold):
        r = int(target[1:])
        self.replicas[r].stop(signal.SIGKILL)
        time.sleep(hold)
        self.replicas[r].start()
        self.wait_ready(r, 90)

    def fault_rolling_restart(self, _target, _hold):
        for r in range(REPLICAS):
            self.replicas[r].stop(signal.SIGTERM)
            self.replicas[r].start()
            self.wait_ready(r, 90)
            time.sleep(2)

    def fault_etcd_member(self, target, hold):
        m = int(target[1:])
        self.etcd[m].stop()
        time.sleep(hold)
        self.etcd[m].start()

    def fault_etcd_quorum(self, target, hold):
        ms = [int(t[1:]) for t in target.split(",")]
        for m in ms:
            self.etcd[m].stop()
        time.sleep(hold)
        for m in ms:
            self.etcd[m].start()

    def fault_partition_etcd(self, target, hold):
        self.proxy("cut", "etcd-%s-" % target)
        time.sleep(hold)
        self.proxy("heal", "etcd-%s-" % target)

    def fault_partition_switch(self, target, hold):
        br, r = target.split("/")
        self.proxy("cut", "of-%s-%s" % (br, r))
        time.sleep(hold)
        self.proxy("heal", "of-%s-%s" % (br, r))

    def fault_vswitchd_restart(self, _target, hold):
        self.ovs.kill("ovs-vswitchd", signal.SIGKILL)
        time.sleep(hold)
        self.ovs.start_vswitchd()

    def fault_flows_wipe(self, target, _hold):
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", target, COOKIE], check=True,
                       capture_output=True, timeout=30)

    def fault_flows_alter(self, target, _hold):
        # Every op25b flow now drops: the direction that cannot leak.
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "mod-flows", target, COOKIE + ",actions=drop"],
                       check=True, capture_output=True, timeout=30)

    def fault_sighup_certs(self, _target, _hold):
        self.pki.rotate()
        for p in self.replicas:
            if p.alive():
                p.p.send_signal(signal.SIGHUP)

    def inject(self, t0):
        plan = json.loads(subprocess.run([self.soakctl, "plan", "-seed", str(self.args.seed),
                                          "-duration", self.args.duration], check=True, capture_output=True,
                                         text=True).stdout)
        with open(os.path.join(self.rec, "plan.json"), "w") as f:
            json.dump(plan, f, indent=1)
        log("plan: %d faults (seed %d)" % (len(plan), self.args.seed))
        threads = []
        for f in plan:
            delay = t0 + f["start"] / 1e9 - time.time()
            if delay > 0:
                time.sleep(delay)
            th = threading.Thread(target=self.run_fault, args=(f,), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join()


# CLEANUP_DEADLINE bounds the teardown after the verdict. Mininet's stop
# reads from each host's shell; a shell killed from outside (an `mn -c`
# elsewhere on the machine kills Mininet processes by name) left a 30-minute
# run blocked there for 18 minutes after "soak ok". The verdict is already
# printed by then: the soak exits with it, and soak.sh kills what is left in
# its namespace.
CLEANUP_DEADLINE = 180

# WATCHDOG_SLACK: a soak that is still running this long after its planned
# duration is stuck somewhere; it ends with exit 3 instead of holding a CI
# job until the job's own limit.
WATCHDOG_SLACK = 20 * 60


def within(seconds, fn):
    """Runs fn in a thread and reports whether it returned within seconds."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def start_watchdog(seconds, seed):
    def fire():
        log("watchdog: still running %.0fs after the start (duration + %ds); giving up (seed %d)" % (seconds, WATCHDOG_SLACK, seed))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", default=os.environ.get("SOAK_DURATION") or "30m")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED") or 0))
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "bin"))
    ap.add_argument("--records", default=os.environ.get("SOAK_RECORDS") or "/tmp/op25b-soak",
                    help="parent directory of the run's records (kept when the soak fails or with --keep)")
    ap.add_argument("--keep", action="store_true", default=os.environ.get("SOAK_KEEP") == "1")
    args = ap.parse_args()
    if args.seed == 0:
        args.seed = int.from_bytes(os.urandom(4), "big") or 1
    if os.geteuid() != 0:
        print("soak: must run as root (Mininet)", file=sys.stderr)
        return 2
    if not os.environ.get("SOAK_NETNS"):
        print("soak: run lab/soak.sh (it gives the soak its own network namespace)", file=sys.stderr)
        return 2
    for b in ("op25bd", "op25bctl"):
        if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
            print("soak: %s/%s missing: make build" % (args.bin_dir, b), file=sys.stderr)
            return 2
    duration = go_duration(args.duration)
    os.makedirs(args.records, exist_ok=True)
    rec = tempfile.mkdtemp(prefix="seed-%d-" % args.seed, dir=args.records)
    tmp = tempfile.mkdtemp(prefix="op25b-soak-tmp-")
    cleanup = lab.Cleanup()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(143))
    cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    log("seed %d, duration %s, records in %s" % (args.seed, args.duration, rec))
    s = Soak(args, tmp, rec, cleanup)
    start_watchdog(duration + WATCHDOG_SLACK, args.seed)
    rc = 2
    try:
        s.setup()
        s.start_probers()
        s.start_swaks()
        time.sleep(3)
        t0 = time.time()
        started = now_iso()
        s.start_writer()
        s.inject(t0)
        last_end = now_iso()
        log("all faults undone; stopping the writer")
        s.writer.stop()
        subprocess.run([s.soakctl, "converge"] + s.api_flags() + [
            "-bridges", ",".join(dpid for dpid, _pop in lab.BRIDGES.values()),
            "-last-fault-end", last_end, "-out", os.path.join(rec, "converge.json")], check=True)
        rest = t0 + duration - time.time()
        if rest > 0:
            log("probing on for %.0fs" % rest)
            time.sleep(rest)
        for p in s.probers:
            lab.stop_process(p, "prober")
        s.stop_swaks()
        subprocess.run([s.soakctl, "history"] + s.api_flags() + ["-out", os.path.join(rec, "revisions.jsonl")])
        for i, p in enumerate(s.replicas):
            p.stop()
        shutil.copy2(os.path.join(s.ovs.dir, "ovs-vswitchd.log"), os.path.join(rec, "ovs-vswitchd.log"))
        r = subprocess.run([s.soakctl, "check", "-dir", rec, "-seed", str(args.seed), "-duration", args.duration,
                            "-started", started])
        rc = r.returncode
    except Exception as e:
        log("error: %s" % e)
        rc = 2
    finally:
        if not within(CLEANUP_DEADLINE, cleanup.run):
            log("cleanup did not finish within %ds; exit %d (seed %d) with the rest left to soak.sh" % (CLEANUP_DEADLINE, rc, args.seed))
            log("records kept in %s" % rec)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
        if rc == 0 and not args.keep:
            shutil.rmtree(rec, ignore_errors=True)
        else:
            log("records kept in %s" % rec)
    log("exit %d (seed %d)" % (rc, args.seed))
    return rc


if __name__ == "__main__":
    sys.exit(main())
