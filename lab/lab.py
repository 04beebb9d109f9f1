#!/usr/bin/python3
"""op25b Mininet lab: a PoP with two subscriber-facing OVS bridges, real SMTP
servers, and the reachability matrix of docs/semantics.md.

Topology (every OVS bridge userspace/netdev: this kernel has no OVS datapath module):

    tokyo-1 PoP                  core (plain L2)              osaka-1 PoP
    labsa (dpid ..0a01) ---+--- labcore ---+--- labsb (dpid ..0b01)
      dyn1   dynamic pool   |   relay  ISP relay/MSA 25, 587    dyn2  dynamic pool
      fixed  static /29     |   extmx  external MX 25, 465, 587 lite2 "lite" service
      nopool no pool        |   mobmx  mobile-carrier MX 25
      lite1  "lite" service |   web    webmail HTTP 80

labsa and labsb are OpenFlow13, fail-mode secure: the only forwarding they do
is what op25b's flows say (its catch-all sends everything else to NORMAL).
labcore is a standalone learning switch, standing in for the PoP's uplink.

Modes (--controller; the default "auto" picks op25bd when bin/ is built):
  static  flows compiled by `lab/compileflows` (flows.Compile, the
          controller's own pure core) loaded with `ovs-ofctl --bundle
          replace-flows`; needs no control plane.
  op25bd  start bin/op25bd replica(s) (embedded etcd for one, Debian etcd for
          more), attach the bridges with `bin/op25bctl ovs attach`, apply
          lab/policy.json with `bin/op25bctl apply -f` and wait with
          `bin/op25bctl status --wait-revision N`.

Expected verdicts are computed here, in Python, straight from the contract
text (an evaluator independent of the Go code); observed verdicts come from
swaks (SMTP, the message must arrive at the server) and curl (HTTP).
The run ends with `N passed, M failed` and exits non-zero on any failure.
"""

import argparse
import atexit
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

LAB_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(LAB_DIR)
SWITCH_PREFIX = "lab"

# Subscriber-facing bridges: name -> (dpid, pop). The dpids and pops are the
# ones registered in lab/policy.json.
BRIDGES = {
    "labsa": ("0000000000000a01", "tokyo-1"),
    "labsb": ("0000000000000b01", "osaka-1"),
}
CORE = "labcore"

# Hosts: name -> (switch, IPv4, IPv6). Subscribers first, servers after.
SUBSCRIBERS = {
    "dyn1": ("labsa", "10.1.0.10", "2001:db8:1::10"),       # dynamic pool, ftth / v6plus
    "fixed": ("labsa", "10.1.200.3", "2001:db8:1:200::3"),  # static /29 inside the dynamic /16
    "nopool": ("labsa", "172.16.0.10", "2001:db8:99::10"),  # in no pool at all
    "lite1": ("labsa", "10.2.0.11", "2001:db8:2::11"),      # "lite" at tokyo-1 (per-PoP phases)
    "dyn2": ("labsb", "10.1.1.20", "2001:db8:1::20"),       # dynamic pool at the other PoP
    "lite2": ("labsb", "10.2.0.10", "2001:db8:2::10"),      # "lite": blocks mobile carriers only
}
# "Infected" subscribers of the dynamic pool (test_offenders, not in the
# matrix): name -> (switch, IPv4, IPv6, connection attempts to port 25,
# servers they are spread over). Each attempt is exactly one SYN.
BOTS = {
    "bot1": ("labsa", "10.1.66.1", "2001:db8:1::66:1", 240, ["extmx", "mobmx"]),
    "bot2": ("labsa", "10.1.66.2", "2001:db8:1::66:2", 160, ["extmx"]),
    "bot3": ("labsb", "10.1.66.3", "2001:db8:1::66:3", 120, ["extmx", "mobmx", "web"]),
}
SERVERS = {
    "relay": ("192.0.2.25", "2001:db8:25::25"),
    "extmx": ("203.0.113.25", "2001:db8:cafe::25"),
    "mobmx": ("198.51.100.25", "2001:db8:ffff::25"),
    "web": ("203.0.113.80", "2001:db8:cafe::80"),
}
# (server, port, protocol) probed from every subscriber over both families.
SERVICES = [
    ("relay", 25, "smtp"),
    ("relay", 587, "smtp"),
    ("extmx", 25, "smtp"),
    ("extmx", 465, "smtps"),
    ("extmx", 587, "smtp"),
    ("mobmx", 25, "smtp"),
    ("web", 80, "http"),
]

PROBE_TIMEOUT = 3  # seconds; a dropped SYN shows up as a connect timeout
# A probe whose first observation disagrees with the expectation is retried
# once with this timeout, so a loaded CI machine cannot turn a slow "forward"
# into a false "drop". A leak (forward when drop was expected) is never
# excused by the retry: the message arrived, that is final.
RETRY_TIMEOUT = 10


def log(msg):
    print("lab: " + msg, flush=True)


# --------------------------------------------------------------------------
# Expected verdicts: docs/semantics.md, written plainly from the text.
# --------------------------------------------------------------------------

def parse_time(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def active_phase(doc, service, pop, at):
    """§3: of the phases that apply (from absent or not in the future; pops
    absent or containing pop) the one with the latest `from` is active."""
    best, best_from = None, None
    for svc in doc.get("services", []):
        if svc["name"] != service:
            continue
        for ph in svc.get("phases", []):
            start = parse_time(ph["from"]) if ph.get("from") else None
            if start is not None and start > at:
                continue
            if ph.get("pops") and pop not in ph["pops"]:
                continue
            if best is None or (start is not None and (best_from is None or start >= best_from)):
                best, best_from = ph, start
    return best


def in_force(entry, at):
    """An exemption or a quarantine acts strictly before its `until`.
    (Python keeps microseconds: the lab writes untils in whole seconds.)"""
    return at < parse_time(entry["until"])


def expected_verdict(doc, pop, at, src, dst, port):
    """§1 for a TCP packet src -> dst:port entering a bridge at `pop`."""
    if port not in (doc.get("ports") or [25]):
        return "forward"
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)

    def holds(prefix, addr):
        net = ipaddress.ip_network(prefix)
        return addr.version == net.version and addr in net

    # §7: quarantines, then exemptions, ahead of the pools, until they lapse.
    if any(holds(q["prefix"], s) and in_force(q, at) for q in doc.get("quarantines", [])):
        return "drop"
    if any(holds(e["prefix"], s) and in_force(e, at) for e in doc.get("exemptions", [])):
        return "forward"
    pool = None
    for p in doc.get("pools", []):
        net = ipaddress.ip_network(p["prefix"])
        if s.version == net.version and s in net:
            if pool is None or net.prefixlen > ipaddress.ip_network(pool["prefix"]).prefixlen:
                pool = p
    if pool is None or pool["kind"] == "static":
        return "forward"
    phase = active_phase(doc, pool["service"], pop, at)
    if phase is None:
        return "forward"

    def inside(prefix):
        net = ipaddress.ip_network(prefix)
        return d.version == net.version and d in net

    if phase.get("relays", True) and any(inside(r["prefix"]) for r in doc.get("relays", [])):
        return "forward"
    # §7: a phase in observe mode forwards what it would drop.
    drop = "forward" if phase.get("mode") == "observe" else "drop"
    if phase["block"] == "all":
        return drop
    for dset in doc.get("destinations", []):
        if dset["name"] in phase["block"] and any(inside(p) for p in dset["prefixes"]):
            return drop
    return "forward"


# --------------------------------------------------------------------------
# Cleanup: everything the lab starts is registered here and undone in
# reverse order, on success, failure, exception or SIGTERM.
# --------------------------------------------------------------------------

class Cleanup:
    def __init__(self):
        self.steps = []
        atexit.register(self.run)

    def add(self, what, fn):
        self.steps.append((what, fn))

    def run(self):
        while self.steps:
            what, fn = self.steps.pop()
            try:
                fn()
            except Exception as e:  # keep going: later steps still matter
                log("cleanup %s: %s" % (what, e))


def stop_process(p, name):
    if p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log("%s did not stop on SIGTERM, killing" % name)
        p.kill()
        p.wait(timeout=5)


def remove_stale_lab_switches():
    """Delete leftovers of an earlier lab run, by the lab's own switch names
    only (never `mn -c`, which would delete other people's bridges)."""
    ours = set(BRIDGES) | {CORE}
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True).stdout
    for br in out.split():
        if br in ours:
            log("removing stale bridge %s from an earlier run" % br)
            subprocess.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-br", br])
            subprocess.run(["ip", "link", "del", br], stderr=subprocess.DEVNULL)
    # A run killed before Mininet's own cleanup leaves the switch ends of its
    # veth pairs in the root namespace even when the bridges are gone, and
    # Mininet then refuses to create them again ("File exists").
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        name = fields[1].strip().split("@")[0]
        if any(name.startswith(br + "-eth") for br in ours):
            log("removing stale link %s from an earlier run" % name)
            subprocess.run(["ip", "link", "del", name], stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------

def build_network():
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, OVSBridge
    from mininet.link import Link

    net = Mininet(controller=None, switch=OVSSwitch, link=Link, autoSetMacs=True,
                  autoStaticArp=False, build=False, waitConnected=False)
    for name, (dpid, _pop) in BRIDGES.items():
        net.addSwitch(name, cls=OVSSwitch, dpid=dpid, datapath="user",
                      failMode="secure", protocols="OpenFlow13")
    net.addSwitch(CORE, cls=OVSBridge, dpid="0000000000000c01", datapath="user")
    for br in BRIDGES:
        net.addLink(br, CORE)
    for name, (sw, _v4, _v6) in SUBSCRIBERS.items():
        net.addHost(name, ip=None)
        net.addLink(name, sw)
    for name, (sw, _v4, _v6, _n, _dsts) in BOTS.items():
        net.addHost(name, ip=None)
        net.addLink(name, sw)
    for name in SERVERS:
        net.addHost(name, ip=None)
        net.addLink(name, CORE)
    net.build()
    return net


def configure_host(host, v4, v6):
    intf = host.defaultIntf().name
    # The userspace datapath does not fill in checksums left to offload:
    # with offload on, ping works and TCP silently fails.
    host.cmd("ethtool -K %s tx off rx off >/dev/null 2>&1" % intf)
    host.cmd("ip addr flush dev %s" % intf)
    # A flat L2 lab with arbitrary addresses: /32 and /128 plus a default
    # route on the interface; ARP and ND then resolve everything on-link.
    host.cmd("ip addr add %s/32 dev %s" % (v4, intf))
    host.cmd("ip route add default dev %s" % intf)
    host.cmd("sysctl -qw net.ipv6.conf.%s.disable_ipv6=0" % intf)
    host.cmd("ip -6 addr add %s/128 dev %s nodad" % (v6, intf))
    host.cmd("ip -6 route add default dev %s" % intf)


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=lab.example", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def start_servers(net, tmp, cleanup):
    cert, key = make_cert(tmp)
    records = {}
    for name, (v4, v6) in SERVERS.items():
        args = ["/usr/bin/python3", os.path.join(LAB_DIR, "labserver.py"),
                "--record", os.path.join(tmp, name + ".jsonl"), "--cert", cert, "--key", key]
        for server, port, proto in SERVICES:
            if server != name:
                continue
            for addr in (v4, "[%s]" % v6):
                if proto == "http":
                    args += ["--http", "%s:%d" % (addr, port)]
                else:
                    args += ["--smtp", "%s:%d%s" % (addr, port, ":tls" if proto == "smtps" else "")]
        logf = open(os.path.join(tmp, name + ".log"), "w")
        p = net.get(name).popen(args, stdout=logf, stderr=subprocess.STDOUT)
        cleanup.add("server " + name, lambda p=p, n=name: stop_process(p, n))
        records[name] = os.path.join(tmp, name + ".jsonl")
    # Wait until each server has printed its ready line.
    deadline = time.time() + 30
    for name in SERVERS:
        path = os.path.join(tmp, name + ".log")
        while "labserver ready" not in open(path).read():
            if time.time() > deadline:
                raise RuntimeError("server %s did not start:\n%s" % (name, open(path).read()))
            time.sleep(0.2)
    return records


# --------------------------------------------------------------------------
# Control plane: static flows or op25bd
# --------------------------------------------------------------------------

def go_build(tmp, name):
    """Builds ./lab/NAME (a small helper main) into tmp."""
    out = os.path.join(tmp, name)
    if not os.path.exists(out):
        env = dict(os.environ, GOFLAGS="-mod=mod")
        go = shutil.which("go") or "/usr/local/go/bin/go"
        subprocess.run([go, "build", "-o", out, "./lab/" + name], cwd=REPO, env=env, check=True)
    return out


def load_static_flows(policy, tmp):
    """Compile policy for each bridge at the current instant and load it."""
    tool = go_build(tmp, "compileflows")
    for br, (dpid, _pop) in BRIDGES.items():
        text = subprocess.run([tool, "-doc", policy, "-dpid", dpid], check=True,
                              capture_output=True, text=True).stdout
        path = os.path.join(tmp, br + ".flows")
        with open(path, "w") as f:
            f.write(text)
        # One atomic bundle: the bridge never sees half a policy.
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--bundle", "replace-flows", br, path], check=True)
        log("loaded %d static flows on %s (dpid %s)" % (len(text.splitlines()), br, dpid))


def parse_duration(text):
    """Go-style durations the lab uses: 500ms, 5s, 1m."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text.strip())
    if not m:
        raise ValueError("duration %r: want e.g. 5s" % text)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception as e:
            if time.time() > deadline:
                raise RuntimeError("%s not ready after %ds: %s" % (url, timeout, e))
        time.sleep(0.5)


class EtcdCluster:
    """Debian's etcd, `members` members on loopback ports chosen at run time.
    Members can be stopped and restarted (same data dir) by the etcd tests."""

    def __init__(self, tmp, cleanup, members):
        self.tmp, self.procs, self.args = tmp, {}, {}
        ports = [(free_port(), free_port()) for _ in range(members)]
        cluster = ",".join("lab%d=http://127.0.0.1:%d" % (i, peer) for i, (_c, peer) in enumerate(ports))
        self.endpoints = ",".join("http://127.0.0.1:%d" % c for c, _p in ports)
        for i, (client, peer) in enumerate(ports):
            self.args[i] = ["/usr/bin/etcd", "--name", "lab%d" % i,
                            "--data-dir", os.path.join(tmp, "etcd-%d" % i),
                            "--listen-client-urls", "http://127.0.0.1:%d" % client,
                            "--advertise-client-urls", "http://127.0.0.1:%d" % client,
                            "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                            "--initial-cluster", cluster, "--initial-cluster-state", "new",
                            "--initial-cluster-token", "op25b-lab"]
            self.start(i)
            cleanup.add("etcd member %d" % i, lambda i=i: self.stop(i))
        for ep in self.endpoints.split(","):
            wait_http(ep + "/health", 60)

    def start(self, i):
        logf = open(os.path.join(self.tmp, "etcd-%d.log" % i), "a")
        self.procs[i] = subprocess.Popen(self.args[i], stdout=logf, stderr=subprocess.STDOUT)

    def stop(self, i):
        stop_process(self.procs[i], "etcd member %d" % i)


class Replica:
    def __init__(self, node_id, proc, api, target):
        self.node_id, self.proc, self.api, self.target = node_id, proc, api, target


class ControlPlane:
    """The op25bd replicas of the lab and the ways to talk to them: the
    operator's CLI (bin/op25bctl) when it exists, the REST API otherwise."""

    def __init__(self, bin_dir, tmp):
        self.bin_dir, self.tmp = bin_dir, tmp
        self.replicas = []
        self.etcd = None

    def alive(self):
        return [r for r in self.replicas if r.proc.poll() is None]

    @property
    def server(self):
        return self.alive()[0].api

    def has_ctl(self):
        return os.access(os.path.join(self.bin_dir, "op25bctl"), os.X_OK)

    def ctl(self, *args, check=True):
        cmd = [os.path.join(self.bin_dir, "op25bctl"), "--server", self.server] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d: %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def get(self, path):
        with urllib.request.urlopen(self.server + path, timeout=10) as resp:
            return resp.read().decode()

    def revision(self):
        return int(json.loads(self.get("/v1/config"))["revision"])

    def status(self):
        return json.loads(self.get("/v1/status"))

    def apply(self, path):
        """Returns (accepted, revision or None, message)."""
        if self.has_ctl():
            r = self.ctl("apply", "-f", path, check=False)
            msg = (r.stdout + r.stderr).strip()
            if r.returncode != 0:
                return False, None, msg
            m = re.search(r"revision\D*(\d+)", msg)
            return True, int(m.group(1)) if m else self.revision(), msg
        with open(path, "rb") as f:
            req = urllib.request.Request(self.server + "/v1/config", data=f.read(), method="PUT",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                body = json.load(resp)
                return True, int(body["revision"]), "PUT /v1/config: revision %s" % body["revision"]
        except urllib.error.HTTPError as e:
            return False, None, "PUT /v1/config: %d %s" % (e.code, e.read().decode(errors="replace").strip())

    def wait_revision(self, revision, timeout=90):
        """Every lab bridge connected and applied_revision >= revision."""
        if self.has_ctl():
            self.ctl("status", "--wait-revision", str(revision), "--timeout", "%ds" % timeout)
            return
        dpids = {dpid for dpid, _pop in BRIDGES.values()}
        last = None

        def done():
            nonlocal last
            try:
                last = self.status()
            except Exception as e:
                last = str(e)
                return False
            ok = {b.get("dpid") for b in last.get("bridges", [])
                  if b.get("connected") and (b.get("applied_revision") or 0) >= revision}
            return dpids <= ok

        if not wait_until(done, timeout):
            raise RuntimeError("bridges did not reach revision %d within %ds: %s" % (revision, timeout, last))

    def apply_and_wait(self, path):
        ok, revision, msg = self.apply(path)
        if not ok:
            raise RuntimeError("apply %s: %s" % (path, msg))
        self.wait_revision(revision)
        return revision

    def document(self):
        """The stored document (exemptions and quarantines included), for
        expectations after a change made item by item."""
        doc = json.loads(self.get("/v1/config"))
        doc.pop("revision", None)
        return doc

    def explain(self, src, dst, port, bridge):
        """The verdict op25b gives for one packet: `op25bctl explain -o json`
        (the helpdesk's command) or GET /v1/explain."""
        if self.has_ctl():
            target = "[%s]:%d" % (dst, port) if ":" in dst else "%s:%d" % (dst, port)
            r = self.ctl("explain", src, target, "--bridge", bridge, "-o", "json")
            return json.loads(r.stdout)
        q = urllib.parse.urlencode({"src": src, "dst": dst, "port": port, "bridge": bridge})
        return json.loads(self.get("/v1/explain?" + q))

    def master_of(self, dpid):
        for b in self.status().get("bridges", []):
            if b.get("dpid") == dpid:
                return b.get("master") or ""
        return ""

    def ovs(self, verb, bridge, *extra):
        """`op25bctl ovs attach|detach`, exactly as an operator runs it on
        the OVS host. Returns the command that did it."""
        if not self.has_ctl():
            raise RuntimeError("op25bctl ovs %s %s: bin/op25bctl missing (make build)" % (verb, bridge))
        r = self.ctl("ovs", verb, bridge, *extra, check=False)
        if r.returncode != 0:
            raise RuntimeError("op25bctl ovs %s %s: %s" % (verb, bridge, (r.stderr or r.stdout).strip()))
        return "op25bctl ovs " + verb

    def attach(self, bridge):
        return self.ovs("attach", bridge, "--controllers", ",".join(r.target for r in self.replicas))


def start_op25bd(policy, tmp, cleanup, args):
    bin_dir = args.bin_dir
    if not os.access(os.path.join(bin_dir, "op25bd"), os.X_OK):
        raise RuntimeError("%s/op25bd missing: run `make build` first" % bin_dir)
    cp = ControlPlane(bin_dir, tmp)
    if args.replicas > 1:
        cp.etcd = EtcdCluster(tmp, cleanup, args.etcd_members)
        log("etcd: %d members at %s" % (args.etcd_members, cp.etcd.endpoints))
    for i in range(args.replicas):
        of, api = free_port(), free_port()
        cmd = [os.path.join(bin_dir, "op25bd"),
               "--openflow-listen", "127.0.0.1:%d" % of,
               "--api-listen", "127.0.0.1:%d" % api,
               "--data-dir", os.path.join(tmp, "op25bd-%d" % i),
               "--node-id", "lab-r%d" % i,
               "--audit-interval", args.audit_interval]
        if args.lease_ttl:
            cmd += ["--lease-ttl", args.lease_ttl]
        if cp.etcd:
            cmd += ["--etcd-endpoints", cp.etcd.endpoints]
        logf = open(os.path.join(tmp, "op25bd-%d.log" % i), "w")
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        cleanup.add("op25bd-%d" % i, lambda p=p, i=i: stop_process(p, "op25bd-%d" % i))
        cp.replicas.append(Replica("lab-r%d" % i, p, "http://127.0.0.1:%d" % api, "tcp:127.0.0.1:%d" % of))
    for r in cp.replicas:
        wait_http(r.api + "/readyz", 60)
    log("op25bd: %d replica(s) ready (%s)" % (len(cp.replicas), ", ".join(r.api for r in cp.replicas)))
    for br in BRIDGES:
        log("attached %s with %s" % (br, cp.attach(br)))
    revision = cp.apply_and_wait(policy)
    log("applied %s at revision %d; every lab bridge reports applied_revision >= %d (%s)" %
        (os.path.basename(policy), revision, revision, "op25bctl" if cp.has_ctl() else "REST"))
    return cp


# --------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------

def arrived(records, server, pid):
    """Whether probe pid is in the server's record. The server appends the
    record before it answers 250 to DATA (or sends the HTTP response)."""
    try:
        with open(records[server]) as f:
            return pid in f.read()
    except FileNotFoundError:
        return False


def probe(net, records, src, server, port, proto, dst, timeout=PROBE_TIMEOUT, pid=None):
    """Returns (observed, detail): "forward" when the message (or HTTP
    request) with a unique id reached the server's record, "drop" when the
    client timed out and nothing arrived, "error" otherwise."""
    pid = pid or uuid.uuid4().hex
    host = net.get(src)
    if proto == "http":
        url = "http://%s:%d/probe/%s" % ("[%s]" % dst if ":" in dst else dst, port, pid)
        cmd = ["curl", "-g", "-s", "-o", "/dev/null", "-m", str(timeout), url]
    else:
        cmd = ["swaks", "--server", dst, "--port", str(port), "--timeout", str(timeout),
               "--to", "rcpt@%s.example" % server, "--from", "probe@%s.example" % src,
               "--helo", "%s.lab.example" % src, "--header", "X-Lab-Probe: " + pid,
               "--body", "op25b lab probe " + pid, "-6" if ":" in dst else "-4"]
        if proto == "smtps":
            cmd.append("--tls-on-connect")
    p = host.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout * 4 + 10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    out = out.decode(errors="replace")
    if arrived(records, server, pid):
        return "forward", ""
    # swaks reports a connect timeout as "... timeout" / "timed out"; curl
    # exits 28 (operation timed out). A refused connection or a TLS/SMTP
    # error is not a drop: it is reported as an error.
    if p.returncode != 0 and (re.search(r"time(d)? ?out", out, re.I) or (proto == "http" and p.returncode == 28)):
        return "drop", ""
    lines = [l for l in out.splitlines() if l.strip()]
    return "error", (lines[-1] if lines else "exit %d" % p.returncode)


def matrix_rows(doc, at):
    """Every (subscriber, server, port, family) of the matrix with its
    expected verdict at instant `at`."""
    rows = []
    for src, (sw, v4, v6) in SUBSCRIBERS.items():
        pop = BRIDGES[sw][1]
        for server, port, proto in SERVICES:
            for fam, s, d in (("v4", v4, SERVERS[server][0]), ("v6", v6, SERVERS[server][1])):
                rows.append(dict(src=src, pop=pop, fam=fam, server=server, dst=d, port=port, proto=proto,
                                 src_ip=s, dpid=BRIDGES[sw][0],
                                 expected=expected_verdict(doc, pop, at, s, d, port)))
    return rows


def run_matrix(net, records, doc):
    rows = matrix_rows(doc, datetime.datetime.now(datetime.timezone.utc))

    def one(row):
        args = (net, records, row["src"], row["server"], row["port"], row["proto"], row["dst"])
        row["pids"] = [uuid.uuid4().hex]
        row["observed"], row["detail"] = probe(*args, pid=row["pids"][0])
        if row["observed"] != row["expected"] and row["observed"] != "forward":
            row["pids"].append(uuid.uuid4().hex)
            row["observed"], row["detail"] = probe(*args, timeout=RETRY_TIMEOUT, pid=row["pids"][1])
            row["detail"] = ("retried: " + row["detail"]).strip()
        return row

    # One worker per source host: probes from different hosts run in
    # parallel (the dropped ones each cost a full timeout), probes from one
    # host stay sequential.
    by_src = {}
    for row in rows:
        by_src.setdefault(row["src"], []).append(row)
    with ThreadPoolExecutor(max_workers=len(by_src)) as pool:
        list(pool.map(lambda rs: [one(r) for r in rs], by_src.values()))
    # A blocked SYN that got through late (a retransmission after the client
    # gave up) would still deliver the message: sweep the records once more.
    for r in rows:
        if r["observed"] != "forward" and any(arrived(records, r["server"], pid) for pid in r["pids"]):
            r["observed"], r["detail"] = "forward", "arrived after the client gave up"
    return rows


def print_matrix(rows):
    fmt = "%-7s %-8s %-3s %-24s %-5s %-6s %-8s %-8s %s"
    print(fmt % ("source", "pop", "fam", "destination", "port", "proto", "expected", "observed", "result"))
    for r in rows:
        ok = r["expected"] == r["observed"]
        print(fmt % (r["src"], r["pop"], r["fam"], "%s %s" % (r["server"], r["dst"]), r["port"], r["proto"],
                     r["expected"], r["observed"], ("ok" if ok else "FAIL") +
                     ("  " + r["detail"] if r.get("detail") else "")))


def print_flows(bridge):
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True).stdout
    print("installed flows on %s:" % bridge)
    print(out)


# --------------------------------------------------------------------------
# Checks beyond the matrix
# --------------------------------------------------------------------------

class Suite:
    """Collects named checks; each prints what it checked as it completes."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, expected, observed, detail=""):
        ok = expected == observed
        detail = " ".join(str(detail).split())[:120]
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print("check %-58s expected %-10s observed %-10s %s%s" % (
            name, expected, observed, "ok" if ok else "FAIL", ("  " + detail) if detail else ""), flush=True)
        return ok

    def matrix(self, rows):
        for r in rows:
            if r["expected"] == r["observed"]:
                self.passed += 1
            else:
                self.failed += 1


def op25b_flows(bridge, table=None):
    """op25b's flows on bridge (cookie marker 0x25b0 in the top 16 bits)."""
    args = ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge, "cookie=0x25b0000000000000/0xffff000000000000"]
    if table is not None:
        args[-1] = "table=%d,%s" % (table, args[-1])
    out = subprocess.run(args, capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "cookie=" in l]


def check_drop_counters(suite, rows):
    """The blocked probes must have hit op25b's per-pool drop flows (table 3,
    the flows whose counters become the blocked-attempt metrics), proving the
    drops are the policy's and not a broken path."""
    for br in BRIDGES:
        want = any(r["expected"] == "drop" and SUBSCRIBERS[r["src"]][0] == br for r in rows)
        packets = 0
        for line in op25b_flows(br, table=3):
            m = re.search(r"n_packets=(\d+)", line)
            if m and "priority=0" not in line:
                packets += int(m.group(1))
        suite.check("%s per-pool drop flows counted blocked SYNs" % br,
                    "counted" if want else "zero", "counted" if packets else "zero",
                    "n_packets=%d" % packets)


def probe_rows(net, records, doc, wanted, suite, label, cp=None):
    """Probe a few (src, server, port, family) rows and check each; with cp,
    also check that `op25bctl explain` says what the probe observed."""
    at = datetime.datetime.now(datetime.timezone.utc)
    for src, server, port, fam in wanted:
        sw, v4, v6 = SUBSCRIBERS[src]
        s, d = (v4, SERVERS[server][0]) if fam == "v4" else (v6, SERVERS[server][1])
        proto = next(p for (sv, pt, p) in SERVICES if sv == server and pt == port)
        exp = expected_verdict(doc, BRIDGES[sw][1], at, s, d, port)
        obs, detail = probe(net, records, src, server, port, proto, d)
        if obs != exp and obs != "forward":
            obs, detail = probe(net, records, src, server, port, proto, d, timeout=RETRY_TIMEOUT)
        suite.check("%s: %s -> %s:%d %s" % (label, src, server, port, fam), exp, obs, detail)
        if cp is not None:
            x = cp.explain(s, d, port, BRIDGES[sw][0])
            suite.check("%s: explain %s -> %s:%d %s" % (label, src, server, port, fam), obs, x["verdict"],
                        explain_detail(x))


def explain_detail(x):
    """One line of an explain answer for a check's detail column."""
    inst = x.get("installed")
    installed = ("installed %s%s" % (inst["verdict"], "" if inst["agrees"] else " DISAGREES")) if inst else \
        "installed: " + x.get("installed_error", "?")
    return "%s; %s" % (x.get("rule", "?"), installed)


def check_explain_matrix(suite, cp, rows):
    """`op25bctl explain` for every row of the matrix: its verdict (the
    reference) must be what the probe observed, and the verdict of the flows
    installed on the bridge must agree with it. Each agreeing row counts as a
    passed check; a disagreeing one is printed."""
    def one(r):
        try:
            return r, cp.explain(r["src_ip"], r["dst"], r["port"], r["dpid"])
        except Exception as e:  # reported as a failed row, the lab goes on
            return r, {"verdict": "error", "reason": str(e)}

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(one, rows))
    agreeing = 0
    for r, x in answers:
        inst = x.get("installed")
        ok = x["verdict"] == r["observed"] and inst is not None and inst["agrees"]
        if ok:
            agreeing += 1
            suite.passed += 1
        else:
            suite.check("explain %s -> %s %s:%d %s" % (r["src"], r["server"], r["dst"], r["port"], r["fam"]),
                        r["observed"] + "/agrees", "%s/%s" % (x["verdict"], "agrees" if inst and inst["agrees"] else "no"),
                        x.get("reason", "") + "; " + explain_detail(x) if x["verdict"] != "error" else x["reason"])
    log("explain: %d of %d matrix rows say what the probe observed, installed flows agreeing" % (agreeing, len(rows)))


def wait_until(pred, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def test_drift(net, records, doc, suite, audit_seconds):
    """Flows deleted by hand are restored by the master's audit."""
    before = len(op25b_flows("labsa"))
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", "labsa"], check=True)
    restored = wait_until(lambda: len(op25b_flows("labsa")) >= before, audit_seconds * 3 + 15)
    suite.check("drift: labsa flows restored after del-flows", "restored",
                "restored" if restored else "missing", "%d flows before" % before)
    probe_rows(net, records, doc, [("dyn1", "extmx", 25, "v4"), ("dyn1", "extmx", 587, "v4")], suite, "after drift")


def test_bad_input(net, records, doc, suite, cp, tmp):
    """A document that fails validation changes nothing (docs/policy-document.md)."""
    bad = json.loads(json.dumps(doc))
    bad["pools"][0]["prefix"] = "10.1.0.1/16"  # host bits set
    path = os.path.join(tmp, "bad-policy.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    rev = cp.revision()
    ok, _rev, msg = cp.apply(path)
    suite.check("bad input: apply of 10.1.0.1/16 rejected", "rejected", "accepted" if ok else "rejected",
                msg)
    suite.check("bad input: revision unchanged", str(rev), str(cp.revision()))
    probe_rows(net, records, doc, [("dyn1", "extmx", 25, "v4"), ("lite1", "extmx", 25, "v4"),
                                   ("fixed", "extmx", 25, "v4")], suite, "after bad input")


def write_variant(doc, tmp, name, change):
    """A copy of the lab policy with change(doc) applied, written to tmp."""
    variant = json.loads(json.dumps(doc))
    change(variant)
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(variant, f, indent=1)
    return variant, path


def service(doc, name):
    return next(s for s in doc["services"] if s["name"] == name)


def test_phase_boundary(net, records, doc, suite, cp, tmp, lead=40):
    """A per-PoP phase `lead` seconds ahead flips osaka-1 by itself (no API
    call at the boundary) and leaves tokyo-1 alone (docs/semantics.md, phases)."""
    boundary = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=lead)
    phased, path = write_variant(doc, tmp, "phased-policy.json", lambda d: service(d, "lite")["phases"].append(
        {"from": boundary.isoformat().replace("+00:00", "Z"), "block": "all", "relays": True, "pops": ["osaka-1"]}))
    cp.apply_and_wait(path)
    rows = [("lite2", "extmx", 25, "v4"), ("lite1", "extmx", 25, "v4"), ("lite2", "relay", 25, "v4")]
    probe_rows(net, records, phased, rows, suite, "before boundary")
    if datetime.datetime.now(datetime.timezone.utc) >= boundary:
        suite.check("phase: 'before' probes finished before the boundary", "before", "after",
                    "machine too slow for a %ds lead" % lead)
    wait_s = (boundary - datetime.datetime.now(datetime.timezone.utc)).total_seconds() + 3
    if wait_s > 0:
        time.sleep(wait_s)
    probe_rows(net, records, phased, rows + [("lite2", "extmx", 587, "v4")], suite, "after boundary")
    cp.apply_and_wait(os.path.join(LAB_DIR, "policy.json"))


def lab_until(lead):
    """An RFC 3339 instant `lead` seconds ahead, in whole seconds."""
    at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=lead)
    return at, at.isoformat().replace("+00:00", "Z")


def test_helpdesk_expiry(net, records, suite, cp, lead=40):
    """An exempted dynamic host (dyn1) sends to the external MX and a
    quarantined static host (fixed) is blocked toward the relay and the
    external MX, until both entries lapse at the same `until`, by
    themselves: then dyn1 is blocked and fixed works again, with no API call
    (the revision does not move). Both are written with the helpdesk's
    commands, `op25bctl exempt` and `op25bctl quarantine`, and every probe is
    also asked of `op25bctl explain`."""
    until, text = lab_until(lead)
    dyn1_v4, fixed_v4, fixed_v6 = SUBSCRIBERS["dyn1"][1], SUBSCRIBERS["fixed"][1], SUBSCRIBERS["fixed"][2]
    cp.ctl("exempt", dyn1_v4, "--until", text, "--reason", "lab: customer runs a mail server", "--ticket", "LAB-1")
    cp.ctl("quarantine", fixed_v4, "--until", text, "--reason", "lab: abuse report", "--ticket", "LAB-2")
    cp.ctl("quarantine", fixed_v6, "--until", text, "--reason", "lab: abuse report", "--ticket", "LAB-3")
    revision = cp.revision()
    cp.wait_revision(revision)
    doc = cp.document()
    rows = [("dyn1", "extmx", 25, "v4"), ("dyn1", "extmx", 587, "v4"),
            ("fixed", "extmx", 25, "v4"), ("fixed", "relay", 25, "v4"), ("fixed", "extmx", 587, "v4"),
            ("fixed", "extmx", 25, "v6"), ("fixed", "relay", 25, "v6")]
    probe_rows(net, records, doc, rows, suite, "before until", cp)
    if datetime.datetime.now(datetime.timezone.utc) >= until:
        suite.check("helpdesk: 'before' probes finished before until", "before", "after",
                    "machine too slow for a %ds lead" % lead)
    wait_s = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds() + 3
    if wait_s > 0:
        time.sleep(wait_s)
    probe_rows(net, records, doc, rows, suite, "after until", cp)
    suite.check("helpdesk: no write at until (revision unchanged)", str(revision), str(cp.revision()))
    for kind, name in (("exemption", "exempt-10-1-0-10-32"), ("quarantine", "quarantine-10-1-200-3-32"),
                       ("quarantine", "quarantine-2001-db8-1-200--3-128")):
        cp.ctl("delete", kind, name)
    cp.wait_revision(cp.revision())


def test_observe(net, records, doc, suite, cp, tmp, audit_seconds):
    """A phase in observe mode delivers the mail it would drop, and the
    switch counts it for the pool (op25b_pool_observed_packets_total)."""
    observed, path = write_variant(doc, tmp, "observe-policy.json",
                                   lambda d: service(d, "lite")["phases"].__setitem__(
                                       0, {"block": "all", "relays": True, "mode": "observe"}))
    cp.apply_and_wait(path)
    probe_rows(net, records, observed, [("lite1", "extmx", 25, "v4"), ("lite2", "mobmx", 25, "v6")],
               suite, "observe mode", cp)
    x = cp.explain(SUBSCRIBERS["lite1"][1], SERVERS["extmx"][0], 25, BRIDGES["labsa"][0])
    suite.check("observe: explain says observe", "True", str(x.get("observe")), x.get("reason", ""))

    def observed_count():
        text = ""
        for r in cp.alive():
            with urllib.request.urlopen(r.api + "/metrics", timeout=10) as resp:
                text += resp.read().decode()
        return sum(float(l.rsplit(" ", 1)[-1]) for l in text.splitlines()
                   if l.startswith("op25b_pool_observed_packets_total{") and 'pool="lab-lite"' in l)

    # Counters are read by the masters' audits: wait for one to pass.
    counted = wait_until(lambda: observed_count() > 0, audit_seconds * 3 + 15, step=2)
    suite.check("observe: op25b_pool_observed_packets_total{pool=lab-lite} > 0", "positive",
                "positive" if counted else "zero", "%g packets" % observed_count())
    check_offenders_observed(suite, cp, SUBSCRIBERS["lite1"][1], audit_seconds)
    cp.apply_and_wait(os.path.join(LAB_DIR, "policy.json"))


def check_offenders_observed(suite, cp, src, audit_seconds):
    """`src`, whose SMTP an observing phase forwarded, is in GET
    /v1/offenders with observed: true."""

    def listed():
        report = json.loads(cp.get("/v1/offenders?since=1h&limit=100"))
        return any(o.get("src") == src and o.get("observed") for o in report.get("offenders", []))

    found = wait_until(listed, audit_seconds * 3 + 30, step=2)
    suite.check("observe: %s listed in offenders, observed" % src, "listed", "listed" if found else "absent")


def test_metrics(suite, cp):
    """Blocked attempts of the dynamic pool show up in /metrics (of whichever
    replica masters the bridges, so every replica is asked)."""
    text = ""
    for r in cp.alive():
        with urllib.request.urlopen(r.api + "/metrics", timeout=10) as resp:
            text += resp.read().decode()
    lines = [l for l in text.splitlines() if not l.startswith("#") and 'lab-dyn' in l
             and re.search(r"drop|block", l.split("{")[0])]
    positive = [l for l in lines if float(l.rsplit(" ", 1)[-1]) > 0]
    suite.check("metrics: blocked counter for pool lab-dyn > 0", "positive",
                "positive" if positive else "absent/zero", (positive or lines or ["no matching series"])[0][:90])


# Connection attempts from SRC to each DST:25 in turn, N in all: a
# non-blocking connect, closed at once, so each attempt is exactly one SYN
# (a socket closed in SYN_SENT sends nothing more). Prints how many.
BOT_SCRIPT = r"""
import socket, sys, time
src, n, dsts = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sent = 0
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    try:
        s.connect((dsts[i % len(dsts)], 25))
    except BlockingIOError:
        pass
    s.close()
    sent += 1
    time.sleep(0.002)
print(sent)
"""


def test_offenders(net, suite, cp, tmp):
    """Three infected hosts hammer port 25 (each attempt one SYN, counted
    here as it is sent); `op25bctl offenders` must list them as the top
    three offenders with exactly those attempts, their destinations, pool,
    bridge and pop, and still exactly those one read later (nothing counted
    twice)."""
    script = os.path.join(tmp, "bot.py")
    with open(script, "w") as f:
        f.write(BOT_SCRIPT)
    sent = {}
    for name, (_sw, v4, _v6, n, servers) in BOTS.items():
        host = net.get(name)
        dsts = [SERVERS[s][0] for s in servers]
        for d in dsts:  # resolve ARP first: unresolved SYNs would queue, and overflow
            host.cmd("ping -c1 -W1 %s >/dev/null 2>&1" % d)
        out = host.cmd("/usr/bin/python3 %s %s %d %s" % (script, v4, n, " ".join(dsts))).strip()
        sent[v4] = int(out.splitlines()[-1]) if out and out.splitlines()[-1].isdigit() else -1
    log("offenders: bots sent %s connection attempts to port 25" % sent)

    def listing():
        r = cp.ctl("-o", "json", "offenders", "--since", "1h", "--limit", "10", check=False)
        if r.returncode != 0:
            return None, (r.stderr or r.stdout).strip()
        return json.loads(r.stdout), r.stdout

    last = {}

    def counted():
        got, _raw = listing()
        if got is None:
            return False
        last["got"] = got
        by_src = {o["src"]: o for o in got.get("offenders", [])}
        return all(by_src.get(src, {}).get("attempts") == n for src, n in sent.items())

    wait_until(counted, 90)
    time.sleep(12)  # one more read of every offender table: nothing may be counted twice
    got, _raw = listing()
    got = got or last.get("got") or {"offenders": []}
    top = got.get("offenders", [])[:3]
    want_order = sorted(BOTS.items(), key=lambda kv: -kv[1][3])
    suite.check("offenders: the three bots are the top three", " ".join(b[1][1] for b in want_order),
                " ".join(o["src"] for o in top), "op25bctl offenders --since 1h")
    by_src = {o["src"]: o for o in got.get("offenders", [])}
    for name, (sw, v4, _v6, n, servers) in BOTS.items():
        o = by_src.get(v4, {})
        dpid, pop = BRIDGES[sw]
        suite.check("offenders: %s attempts (sent)" % name, str(sent[v4]), str(o.get("attempts")))
        suite.check("offenders: %s destinations, pool, bridge, pop, mode" % name,
                    "%d lab-dyn %s %s blocked" % (len(servers), dpid, pop),
                    "%s %s %s %s %s" % (o.get("destinations"), o.get("pool"), o.get("bridge"), o.get("pop"),
                                        "observed" if o.get("observed") else "blocked"))
    table = cp.ctl("offenders", "--since", "1h", "--limit", "3", check=False).stdout
    print(table, flush=True)


class ProbeLoop:
    """Keeps sending SMTP from one subscriber to one destination, each try
    with its own probe id, until stopped; counts tries and arrivals."""

    def __init__(self, net, records, src, server, port, fam):
        self.args = (net, records, src, server, port)
        sw, v4, v6 = SUBSCRIBERS[src]
        self.dst = SERVERS[server][0 if fam == "v4" else 1]
        self.pids = []
        self.stop = False
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(self.run)

    def run(self):
        net, records, src, server, port = self.args
        while not self.stop:
            self.pids.append(uuid.uuid4().hex)
            probe(net, records, src, server, port, "smtp", self.dst, timeout=2, pid=self.pids[-1])

    def finish(self):
        """Stops the loop; returns (tries, messages that arrived), counted
        from the server's record so late arrivals count too."""
        self.stop = True
        self.future.result(timeout=60)
        self.pool.shutdown()
        time.sleep(1)
        _net, records, _src, server, _port = self.args
        return len(self.pids), sum(1 for pid in self.pids if arrived(records, server, pid))


def test_failover(net, records, doc, suite, cp, tmp, lease_seconds):
    """kill -9 the master of labsa while dyn1 keeps trying SMTP to the
    external MX: nothing leaks (fail-mode secure keeps the flows), another
    replica takes the bridge over, and a policy change made right after is
    applied by the new master."""
    dpid = BRIDGES["labsa"][0]
    old = cp.master_of(dpid)
    victim = next((r for r in cp.replicas if r.node_id == old), None)
    if victim is None:
        suite.check("failover: labsa has a master", "a replica", old or "none")
        return
    loop = ProbeLoop(net, records, "dyn1", "extmx", 25, "v4")
    time.sleep(2)
    victim.proc.kill()  # SIGKILL: no graceful hand-over
    victim.proc.wait()
    taken = wait_until(lambda: cp.master_of(dpid) not in ("", old), lease_seconds * 3 + 20)
    new = cp.master_of(dpid)
    time.sleep(6)  # keep probing while the new master takes the bridge over
    tries, leaked = loop.finish()
    suite.check("failover: labsa master moved off killed %s" % old, "moved",
                "moved" if taken else "stuck", "new master %s" % (new or "none"))
    suite.check("failover: dyn1->extmx:25 leaked transactions", "0", str(leaked), "%d tries" % tries)
    changed, path = write_variant(doc, tmp, "failover-policy.json",
                                  lambda d: service(d, "lite")["phases"].__setitem__(
                                      0, {"block": "all", "relays": True}))
    cp.apply_and_wait(path)
    probe_rows(net, records, changed, [("lite1", "extmx", 25, "v4"), ("lite1", "relay", 25, "v4")],
               suite, "change after failover")
    cp.apply_and_wait(os.path.join(LAB_DIR, "policy.json"))


def test_etcd(net, records, doc, suite, cp, tmp):
    """One etcd member down: no effect. Quorum lost: enforcement unchanged
    and writes refused. Members back: writes work again."""
    etcd = cp.etcd
    rows = [("dyn1", "extmx", 25, "v4"), ("dyn1", "extmx", 587, "v4"), ("lite2", "mobmx", 25, "v4")]
    etcd.stop(2)
    changed, path = write_variant(doc, tmp, "etcd-policy.json",
                                  lambda d: service(d, "lite")["phases"].__setitem__(
                                      0, {"block": "all", "relays": True}))
    ok, _rev, msg = cp.apply(path)
    suite.check("etcd one member down: apply accepted", "accepted", "accepted" if ok else "rejected", msg[:80])
    if ok:
        cp.apply_and_wait(os.path.join(LAB_DIR, "policy.json"))
    probe_rows(net, records, doc, rows, suite, "etcd one member down")
    etcd.stop(1)
    time.sleep(3)
    ok, _rev, msg = cp.apply(path)
    suite.check("etcd quorum lost: apply refused", "refused", "accepted" if ok else "refused",
                msg)
    probe_rows(net, records, doc, rows, suite, "etcd quorum lost")
    etcd.start(1)
    etcd.start(2)
    recovered = wait_until(lambda: cp.apply(path)[0], 90, step=3)
    suite.check("etcd recovered: apply accepted again", "accepted", "accepted" if recovered else "refused")
    if recovered:
        cp.wait_revision(cp.revision())
        probe_rows(net, records, changed, [("lite2", "extmx", 25, "v4")], suite, "etcd recovered")
        cp.apply_and_wait(os.path.join(LAB_DIR, "policy.json"))


def test_detach(net, records, doc, suite, cp):
    """Detaching a bridge removes its controllers but must not open the hole:
    fail-mode stays secure and op25b's flows stay installed (internal/ovsattach
    re-adds the flows OVS flushes when the last controller goes)."""
    before = len(op25b_flows("labsa"))
    how = cp.ovs("detach", "labsa")
    ctl_targets = subprocess.run(["ovs-vsctl", "get-controller", "labsa"], capture_output=True, text=True).stdout.split()
    fail_mode = subprocess.run(["ovs-vsctl", "get-fail-mode", "labsa"], capture_output=True, text=True).stdout.strip()
    suite.check("detach: labsa has no controllers", "none", " ".join(ctl_targets) or "none", how)
    suite.check("detach: labsa fail-mode", "secure", fail_mode or "standalone")
    suite.check("detach: op25b flows still on labsa", str(before), str(len(op25b_flows("labsa"))))
    probe_rows(net, records, doc, [("dyn1", "extmx", 25, "v4"), ("dyn1", "extmx", 587, "v4"),
                                   ("fixed", "extmx", 25, "v4")], suite, "after detach")


def test_vswitchd_restart(net, records, doc, suite, cp):
    """ovs-vswitchd killed and restarted (flows are not persistent; the bridge
    comes back fail-mode secure and empty) → op25b reinstalls its flows.
    Disturbs every OVS user on the host: only with --disruptive."""
    before = len(op25b_flows("labsa"))
    pidfile = "/var/run/openvswitch/ovs-vswitchd.pid"
    with open(pidfile) as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    time.sleep(1)
    subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "--no-ovsdb-server", "start",
                    "--system-id=random"], capture_output=True)
    restored = wait_until(lambda: len(op25b_flows("labsa")) >= before and len(op25b_flows("labsb")) > 0, 90)
    suite.check("vswitchd restart: op25b flows back on labsa", "restored", "restored" if restored else "missing")
    probe_rows(net, records, doc, [("dyn1", "extmx", 25, "v4"), ("dyn1", "extmx", 587, "v4"),
                                   ("dyn2", "mobmx", 25, "v6")], suite, "after vswitchd restart")


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--controller", choices=["auto", "static", "op25bd"], default="auto",
                    help="auto (default): op25bd when --bin-dir has op25bd and op25bctl, static otherwise")
    ap.add_argument("--policy", default=os.path.join(LAB_DIR, "policy.json"))
    ap.add_argument("--flows-from", metavar="FILE",
                    help="static mode: compile the flows from FILE while expecting lab policy verdicts "
                         "(a self-test: with a different policy the lab must report failures)")
    ap.add_argument("--replicas", type=int, default=2,
                    help="op25bd replicas; 1 uses the embedded etcd, more a Debian etcd cluster")
    ap.add_argument("--etcd-members", type=int, default=3)
    ap.add_argument("--lease-ttl", default="5s", help="op25bd --lease-ttl (failover speed); empty to omit")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "bin"), help="where op25bd and op25bctl are")
    ap.add_argument("--disruptive", action="store_true",
                    help="also kill and restart ovs-vswitchd (affects every bridge on the host)")
    ap.add_argument("--audit-interval", default="5s")
    ap.add_argument("--suite", choices=["matrix", "full"], default="full",
                    help="full adds, with --controller=op25bd, metrics, drift, bad input, phase-boundary, "
                         "exemption/quarantine expiry and observe-mode tests")
    ap.add_argument("--show-flows", action="store_true", help="print the installed flows of labsa")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, records)")
    ap.add_argument("--mn-cleanup", action="store_true",
                    help="run `mn -c` at the very end (only when nothing else uses OVS: make lab-test)")
    ap.add_argument("--print-expected", metavar="RFC3339", nargs="?", const="now",
                    help="print the matrix's expected verdicts as JSON (at the given instant) and exit; "
                         "needs no root (lab_test.go compares them with flows.Evaluate and flows.Simulate)")
    args = ap.parse_args()

    if args.controller == "auto":
        built = all(os.access(os.path.join(args.bin_dir, b), os.X_OK) for b in ("op25bd", "op25bctl"))
        args.controller = "op25bd" if built else "static"
    with open(args.policy) as f:
        doc = json.load(f)
    if args.print_expected:
        at = (datetime.datetime.now(datetime.timezone.utc) if args.print_expected == "now"
              else parse_time(args.print_expected))
        json.dump(matrix_rows(doc, at), sys.stdout, indent=1)
        print()
        return 0

    if os.geteuid() != 0:
        print("lab: must run as root (Mininet)", file=sys.stderr)
        return 2

    # Two labs at once would fight over the fixed lab switch names.
    lock = open("/run/lock/op25b-lab.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another lab run holds /run/lock/op25b-lab.lock; waiting")
        fcntl.flock(lock, fcntl.LOCK_EX)

    cleanup = Cleanup()
    # SIGTERM/SIGHUP become SystemExit so that the finally/atexit cleanup runs.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(143))
    if args.mn_cleanup:
        cleanup.add("mn -c", lambda: subprocess.run(["mn", "-c"], capture_output=True))
    tmp = tempfile.mkdtemp(prefix="op25b-lab-")
    if args.keep_tmp:
        log("keeping temp dir %s" % tmp)
    else:
        cleanup.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))

    t0 = time.time()
    suite = Suite()
    cp = None
    try:
        remove_stale_lab_switches()
        start = time.time()
        net = build_network()
        cleanup.add("mininet", net.stop)
        net.start()
        for name, (_sw, v4, v6) in SUBSCRIBERS.items():
            configure_host(net.get(name), v4, v6)
        for name, (_sw, v4, v6, _n, _dsts) in BOTS.items():
            configure_host(net.get(name), v4, v6)
        for name, (v4, v6) in SERVERS.items():
            configure_host(net.get(name), v4, v6)
        log("topology up: bridges %s, core %s, %d subscribers, %d servers" %
            (", ".join(BRIDGES), CORE, len(SUBSCRIBERS), len(SERVERS)))
        records = start_servers(net, tmp, cleanup)
        log("servers up (aiosmtpd + http), records in %s" % tmp)
        if args.controller == "static":
            load_static_flows(args.flows_from or args.policy, tmp)
        else:
            cp = start_op25bd(args.policy, tmp, cleanup, args)
        rows = run_matrix(net, records, doc)
        print_matrix(rows)
        suite.matrix(rows)
        log("matrix of %d probes in %.0fs" % (len(rows), time.time() - start))
        check_drop_counters(suite, rows)
        if cp:
            check_explain_matrix(suite, cp, rows)
        else:
            log("explain: no op25bd in static mode; the explain checks are skipped")
        if cp and args.suite == "full":
            test_metrics(suite, cp)
            if cp.has_ctl():
                test_offenders(net, suite, cp, tmp)
            test_drift(net, records, doc, suite, parse_duration(args.audit_interval))
            test_bad_input(net, records, doc, suite, cp, tmp)
            test_phase_boundary(net, records, doc, suite, cp, tmp)
            if cp.has_ctl():
                test_helpdesk_expiry(net, records, suite, cp)
            test_observe(net, records, doc, suite, cp, tmp, parse_duration(args.audit_interval))
            if len(cp.replicas) > 1:
                test_failover(net, records, doc, suite, cp, tmp, parse_duration(args.lease_ttl or "10s"))
            if cp.etcd and args.etcd_members >= 3:
                test_etcd(net, records, doc, suite, cp, tmp)
            if args.disruptive:
                test_vswitchd_restart(net, records, doc, suite, cp)
            test_detach(net, records, doc, suite, cp)
        if args.show_flows:
            print_flows("labsa")
    except Exception as e:
        log("error: %s" % e)
        suite.check("lab ran to completion", "completed", "error", str(e)[:200])
    finally:
        cleanup.run()
        log("finished in %.0fs" % (time.time() - t0))
        print("%d passed, %d failed" % (suite.passed, suite.failed), flush=True)
    return 1 if suite.failed or not suite.passed else 0


if __name__ == "__main__":
    sys.exit(main())
