#!/usr/bin/python3
"""Lab traffic clients (run inside the sl-client namespace). Prints one JSON document.

  labclient.py http-short --vip A --port P --src A,B,... --count N [--threads T]
      N short HTTP/1.0 connections (server closes first), spread round-robin over the
      source addresses; counts answers by body ("b1", "b2", ...).
      -> {"ok": n, "fail": n, "bodies": {"b1": n, ...}, "errors": [...first few...]}

  labclient.py http-keep --vip A --port P --src A,B,... --dir D [--hold S]
      One HTTP/1.1 keep-alive connection per source address; first request on each, writes
      D/first.json; then waits (at most S seconds) for the file D/go, sends a
      second request on every connection and writes D/second.json, same shape. Both files are
      lists in --src order: [{"src": A, "body": "b1" or "ERROR ..."}, ...].

  labclient.py http-paced --vip A --port P --src A,B,... --count N --rate R
                         [--connect-timeout S] [--max-inflight M]
      N short HTTP/1.0 connections (server closes first), each on a fresh socket, started
      at a steady R per second (connection i at start + i/R, each in its own thread, so a
      slow connection does not delay the next), source address round-robin. Connect gets
      --connect-timeout (default 3 s: longer than Linux's 1 s SYN retransmission, so a
      connection that needs one succeeds late instead of failing); every later operation
      --timeout. Latencies are from just before connect() to the end of the exchange.
      -> {"ok": n, "fail": n, "bodies": {...}, "errors": [...first few...],
          "fail_kinds": {"ConnectionRefusedError": n, ...}, "ok_latency_max_s": x,
          "fail_latency_max_s": x, "slow_ok": n (ok but took >= 0.5 s), "started": n,
          "elapsed_s": x}

  labclient.py udp --vip A --port P --src A,B,... --count N
      N request/response exchanges per source address, each from a fresh socket (new flow).
      -> {"ok": n, "fail": n, "bodies": {"b1": n, ...}, "errors": [...]}

Every operation has a timeout and every loop a bound; the whole run has a deadline.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time

MAX_ERRORS = 10


def http_request(sock, keepalive):
    conn = "keep-alive" if keepalive else "close"
    ver = "HTTP/1.1" if keepalive else "HTTP/1.0"
    sock.sendall(f"GET / {ver}\r\nHost: sluice-lab\r\nConnection: {conn}\r\n\r\n".encode())


def read_response(sock):
    """Read one response with a Content-Length body; return (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before headers")
        buf += chunk
        if len(buf) > 65536:
            raise ValueError("headers too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    if length is None:
        raise ValueError("no content-length")
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed in body")
        rest += chunk
    return status, rest[:length].decode("latin-1").strip()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.fail = 0
        self.bodies = {}
        self.errors = []

    def good(self, body):
        with self.lock:
            self.ok += 1
            self.bodies[body] = self.bodies.get(body, 0) + 1

    def bad(self, what):
        with self.lock:
            self.fail += 1
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(what)

    def doc(self):
        return {"ok": self.ok, "fail": self.fail, "bodies": self.bodies, "errors": self.errors}


def http_short_one(vip, port, src, timeout, tally):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect((vip, port))
        http_request(s, keepalive=False)
        status, body = read_response(s)
        # Read to EOF: the server closes first, so the client never holds TIME_WAIT.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and s.recv(4096):
            pass
        if status != 200:
            tally.bad(f"{src}: status {status}")
        else:
            tally.good(body)
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        tally.bad(f"{src}: {type(e).__name__}: {e}")
    finally:
        s.close()


def cmd_http_short(a):
    tally = Tally()
    srcs = a.src.split(",")
    deadline = time.monotonic() + a.deadline
    counter = iter(range(a.count))
    lock = threading.Lock()

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            http_short_one(a.vip, a.port, srcs[i % len(srcs)], a.timeout, tally)

    threads = [threading.Thread(target=worker) for _ in range(max(1, a.threads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    d = tally.doc()
    missing = a.count - d["ok"] - d["fail"]
    if missing > 0:
        d["fail"] += missing
        d["errors"].append(f"{missing} requests not attempted before the {a.deadline}s deadline")
    print(json.dumps(d))
    return 0


def http_paced_one(vip, port, src, connect_timeout, timeout):
    """One fresh HTTP/1.0 connection. Returns (body or None, error or None, seconds)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t0 = time.monotonic()
    phase = "bind"
    try:
        s.bind((src, 0))
        phase = "connect"
        s.settimeout(connect_timeout)
        s.connect((vip, port))
        phase = "request"
        s.settimeout(timeout)
        http_request(s, keepalive=False)
        status, body = read_response(s)
        # Read to EOF: the server closes first, so the client never holds TIME_WAIT.
        phase = "eof"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and s.recv(4096):
            pass
        if status != 200:
            return None, ("HTTPStatus", f"{src}: status {status}"), time.monotonic() - t0
        return body, None, time.monotonic() - t0
    except Exception as e:  # noqa: BLE001 - every failure is counted and reported
        kind = type(e).__name__
        return None, (kind, f"{src}: {phase}: {kind}: {e}"), time.monotonic() - t0
    finally:
        s.close()


def cmd_http_paced(a):
    tally = Tally()
    srcs = a.src.split(",")
    rate = max(a.rate, 0.01)
    lat = {"ok": 0.0, "fail": 0.0}
    kinds = {}
    slow = [0]
    inflight = threading.BoundedSemaphore(max(1, a.max_inflight))
    start = time.monotonic()
    deadline = start + a.deadline
    threads = []
    started = 0

    def one(i):
        try:
            body, err, secs = http_paced_one(a.vip, a.port, srcs[i % len(srcs)],
                                             a.connect_timeout, a.timeout)
            with tally.lock:
                key = "ok" if err is None else "fail"
                lat[key] = max(lat[key], secs)
                if err is None and secs >= 0.5:
                    slow[0] += 1
                if err is not None:
                    kinds[err[0]] = kinds.get(err[0], 0) + 1
            if err is None:
                tally.good(body)
            else:
                tally.bad(f"{err[1]} (after {secs:.3f} s)")
        finally:
            inflight.release()

    for i in range(a.count):
        when = start + i / rate
        now = time.monotonic()
        if when >= deadline or now >= deadline:
            break
        if when > now:
            time.sleep(when - now)
        # Bounded: at most --max-inflight connections at once, and never past the deadline.
        if not inflight.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break
        t = threading.Thread(target=one, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        started += 1
    # Every operation of a connection is bounded, so this join is too.
    join_until = time.monotonic() + a.connect_timeout + 3 * a.timeout + 1.0
    for t in threads:
        t.join(max(0.0, join_until - time.monotonic()))
    d = tally.doc()
    hung = started - d["ok"] - d["fail"]
    if hung > 0:
        d["fail"] += hung
        d["errors"].append(f"{hung} connections did not finish in time")
        kinds["Unfinished"] = kinds.get("Unfinished", 0) + hung
    missing = a.count - started
    if missing > 0:
        d["fail"] += missing
        d["errors"].append(f"{missing} connections not started before the {a.deadline}s deadline")
        kinds["NotStarted"] = missing
    d.update({
        "fail_kinds": kinds,
        "ok_latency_max_s": round(lat["ok"], 4),
        "fail_latency_max_s": round(lat["fail"], 4),
        "slow_ok": slow[0],
        "started": started,
        "elapsed_s": round(time.monotonic() - start, 3),
    })
    print(json.dumps(d))
    return 0


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, path)


def cmd_http_keep(a):
    srcs = a.src.split(",")
    conns = []  # [src, socket or None, first body]
    for src in srcs:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        try:
            s.bind((src, 0))
            s.connect((a.vip, a.port))
            http_request(s, keepalive=True)
            status, body = read_response(s)
            conns.append([src, s, body if status == 200 else f"ERROR status {status}"])
        except Exception as e:  # noqa: BLE001
            conns.append([src, None, f"ERROR {type(e).__name__}: {e}"])
            s.close()
    write_json(os.path.join(a.dir, "first.json"), [{"src": c[0], "body": c[2]} for c in conns])

    go = os.path.join(a.dir, "go")
    deadline = time.monotonic() + a.hold
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)

    second = []
    for src, s, _ in conns:
        if s is None:
            second.append({"src": src, "body": "ERROR no connection"})
            continue
        try:
            http_request(s, keepalive=True)
            status, body = read_response(s)
            second.append({"src": src, "body": body if status == 200 else f"ERROR status {status}"})
        except Exception as e:  # noqa: BLE001
            second.append({"src": src, "body": f"ERROR {type(e).__name__}: {e}"})
        finally:
            s.close()
    write_json(os.path.join(a.dir, "second.json"), second)
    return 0


def cmd_udp(a):
    tally = Tally()
    deadline = time.monotonic() + a.deadline
    for src in a.src.split(","):
        for i in range(a.count):
            if time.monotonic() >= deadline:
                tally.bad(f"{src}: deadline reached")
                continue
            payload = f"ping-{src}-{i}"
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(a.timeout)
            try:
                s.bind((src, 0))
                reply = None
                # Up to 3 sends: the very first datagram may wait on ARP in the dataplane.
                for _ in range(3):
                    s.sendto(payload.encode(), (a.vip, a.port))
                    try:
                        reply = s.recv(2048).decode("latin-1")
                        break
                    except socket.timeout:
                        continue
                if reply is None:
                    tally.bad(f"{src}: no reply to {payload}")
                    continue
                name, _, echoed = reply.partition(" ")
                if echoed != payload or not name.startswith("b"):
                    tally.bad(f"{src}: bad reply {reply!r} to {payload!r}")
                else:
                    tally.good(name)
            except Exception as e:  # noqa: BLE001
                tally.bad(f"{src}: {type(e).__name__}: {e}")
            finally:
                s.close()
    print(json.dumps(tally.doc()))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("http-short", "http-keep", "http-paced", "udp"):
        sp = sub.add_parser(name)
        sp.add_argument("--vip", required=True)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--src", required=True, help="comma-separated source addresses")
        sp.add_argument("--timeout", type=float, default=5.0, help="per-operation timeout (s)")
        sp.add_argument("--deadline", type=float, default=120.0, help="whole-run bound (s)")
        if name == "http-short":
            sp.add_argument("--count", type=int, required=True)
            sp.add_argument("--threads", type=int, default=4)
        elif name == "http-paced":
            sp.add_argument("--count", type=int, required=True)
            sp.add_argument("--rate", type=float, required=True, help="new connections per second")
            sp.add_argument("--connect-timeout", type=float, default=3.0)
            sp.add_argument("--max-inflight", type=int, default=256)
        elif name == "http-keep":
            sp.add_argument("--dir", required=True)
            sp.add_argument("--hold", type=float, default=60.0)
        else:
            sp.add_argument("--count", type=int, default=4)
    a = p.parse_args()
    return {"http-short": cmd_http_short, "http-keep": cmd_http_keep, "http-paced": cmd_http_paced,
            "udp": cmd_udp}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
