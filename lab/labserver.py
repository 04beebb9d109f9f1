#!/usr/bin/python3
"""A lab server that records every delivery it accepts.

Run inside a Mininet host's namespace. It serves real SMTP with aiosmtpd
(optionally SMTPS, i.e. TLS on connect, for port 465) and plain HTTP, on any
number of IPv4/IPv6 addresses and ports, and appends one JSON line per
delivered message / served request to --record. The lab counts a probe as
"forward" only when its unique probe id shows up in that file: a full SMTP
transaction with the message arriving, not merely a TCP connect.

    labserver.py --record FILE [--cert C --key K]
                 --smtp ADDR:PORT[:tls] ... --http ADDR:PORT ...
"""

import argparse
import asyncio
import email
import http.server
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Recorder:
    """Appends JSON lines; one lock so concurrent deliveries never interleave."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def write(self, **entry):
        entry["time"] = time.time()
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


class RecordingHandler:
    def __init__(self, recorder, listen):
        self.recorder = recorder
        self.listen = listen

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content)
        self.recorder.write(
            kind="smtp",
            listen=self.listen,
            peer=str(session.peer[0]) if session.peer else "",
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            probe=msg.get("X-Lab-Probe", ""),
        )
        return "250 Message accepted for delivery"


def split_listen(spec):
    """ADDR:PORT[:tls] with IPv6 as [ADDR]:PORT."""
    tls = False
    if spec.endswith(":tls"):
        tls, spec = True, spec[: -len(":tls")]
    host, _, port = spec.rpartition(":")
    return host.strip("[]"), int(port), tls


def make_http_server(addr, port, recorder):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            probe = self.path.rsplit("/", 1)[-1]
            recorder.write(kind="http", listen="%s:%d" % (addr, port),
                           peer=self.client_address[0], probe=probe)
            body = b"webmail ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = family

    return Server((addr, port), Handler)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--smtp", action="append", default=[])
    ap.add_argument("--http", action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    recorder = Recorder(args.record)
    controllers, https = [], []
    for spec in args.smtp:
        addr, port, tls = split_listen(spec)
        ctx = None
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args.cert, args.key)
        c = Controller(RecordingHandler(recorder, "%s:%d" % (addr, port)),
                       hostname=addr, port=port, ssl_context=ctx,
                       server_hostname="lab.example", ready_timeout=10)
        c.start()
        controllers.append(c)
    for spec in args.http:
        addr, port, _ = split_listen(spec)
        srv = make_http_server(addr, port, recorder)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        https.append(srv)

    print("labserver ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for c in controllers:
        c.stop()
    for s in https:
        s.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
