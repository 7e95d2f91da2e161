#!/usr/bin/env python3
"""Link-shortener benchmark (docs/benchmarks.md, "Link shortener").

Starts a 3-node link-shortener cluster on 127.0.0.1 and drives node 1 with wrk:
  - GET /_health: the HTTP server alone (the same-run baseline),
  - GET /<code>: redirects (each one also increments the code's replicated counter),
  - POST /: shortens of new URLs under the default write concern (durable),
  - a burst of 10,000 new links, timed until nodes 2 and 3 hold all of them.

usage: link_shortener_bench.py PATH/TO/link-shortener [--duration S] [--connections N]
                                [--json FILE]
With --json, the figures are also written as JSON (bench/plot draws
bench/results/link_shortener.json).
"""
import argparse
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
import urllib.request

SHORTEN_LUA = r"""
-- Each thread posts new URLs: url=https://bench.example/<run>-<thread>-<n>. With a limit
-- argument, a thread stops posting after that many and asks for /_health instead.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tag", tostring(os.time()) .. "-" .. threads)
end
local counter = 0
function init(args)
  tag = wrk.thread:get("tag")
  limit = tonumber(args[1]) or 0
end
function request()
  if limit > 0 and counter >= limit then
    return wrk.format("GET", "/_health")
  end
  counter = counter + 1
  return wrk.format("POST", "/", {["Content-Type"] = "application/x-www-form-urlencoded"},
                    "url=https%3A%2F%2Fbench.example%2F" .. tag .. "-" .. counter)
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(binary, root):
    secret = os.path.join(root, "secret")
    with open(secret, "w") as f:
        f.write("benchmark-secret-0123456789abcdef\n")
    os.chmod(secret, 0o600)
    nodes, seed = [], None
    for i in (1, 2, 3):
        data = os.path.join(root, f"n{i}")
        os.makedirs(data)
        cluster = free_port()
        args = [binary, "--name", f"n{i}", "--http", "127.0.0.1:0", "--listen",
                f"127.0.0.1:{cluster}", "--data-dir", data, "--secret-file", secret,
                "--log-level", "warn"]
        if seed:
            args += ["--seeds", seed]
        seed = seed or f"127.0.0.1:{cluster}"
        p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        m = re.search(r"http 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise SystemExit(f"node n{i} did not start: {line!r}")
        nodes.append((p, int(m.group(1))))
    return nodes


def http(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def links(port):
    _, body = http(port, "GET", "/metrics")
    m = re.search(r"^link_shortener_links (\d+)$", body, re.M)
    return int(m.group(1)) if m else -1


def wrk(url, duration, connections, threads, script=None, script_args=()):
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99),
            "errors": int(errors.group(1)) if errors else 0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (scripts/setup installs it)")
    root = tempfile.mkdtemp(prefix="deltacrdt-shortener-bench-")
    nodes = start_nodes(a.binary, root)
    try:
        ports = [port for _, port in nodes]
        n1 = ports[0]
        deadline = time.time() + 20
        while time.time() < deadline:
            if all(http(p, "GET", "/_cluster")[1].count('"up"') == 2 for p in ports):
                break
            time.sleep(0.05)
        status, code = http(n1, "POST", "/", b"url=https%3A%2F%2Fexample.com%2Fbench")
        assert status == 201, (status, code)
        lua = os.path.join(root, "shorten.lua")
        with open(lua, "w") as f:
            f.write(SHORTEN_LUA)
        d, c, t = a.duration, a.connections, a.threads
        base = f"http://127.0.0.1:{n1}"
        results = {
            "health (baseline)": wrk(f"{base}/_health", d, c, t),
            "redirect": wrk(f"{base}/{code}", d, c, t),
            "shorten (durable)": wrk(f"{base}/", d, c, t, lua),
        }
        print(f"3 nodes on 127.0.0.1, wrk -t{t} -c{c} -d{d}s against n1")
        print(f"{'route':<20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx/3xx':>12}")
        for name, r in results.items():
            print(f"{name:<20} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                  f"{r['errors']:>12}")
        _, total = http(n1, "GET", "/" + code + "/aggregates")
        print(f"redirect counter after the run, read on n3 later: ", end="")
        time.sleep(1)
        print(http(ports[2], "GET", "/" + code + "/aggregates")[1], f"(n1: {total})")

        # The burst: 10,000 new links posted to n1 as fast as wrk can (a thread's first
        # request() call is a probe wrk does not send, hence the +1); timed until n2 and n3
        # hold them all.
        before = [links(p) for p in ports]
        burst = 10000
        t0 = time.monotonic()
        w = subprocess.Popen(["wrk", f"-t{t}", f"-c{c}", "-d60s", "-s", lua, f"{base}/", "--",
                              str(burst // t + 1)], stdout=subprocess.DEVNULL)
        seen = [None, None, None]
        while any(s is None for s in seen) and time.monotonic() - t0 < 60:
            for i, p in enumerate(ports):
                if seen[i] is None and links(p) >= before[i] + burst:
                    seen[i] = time.monotonic() - t0
            time.sleep(0.005)
        w.send_signal(signal.SIGINT)
        w.wait()
        if any(s is None for s in seen):
            raise SystemExit(f"burst not visible everywhere within 60 s: {seen}")
        print(f"burst of {burst} links to n1: all on n1 after {seen[0]:.2f} s, on n2 after "
              f"{seen[1]:.2f} s, on n3 after {seen[2]:.2f} s "
              f"(replication lag after n1 had them: {max(seen[1:]) - seen[0]:.3f} s)")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"nodes": 3, "duration_s": d, "connections": c, "threads": t,
                           "routes": [{"route": name, **r} for name, r in results.items()],
                           "burst": {"links": burst, "on_n1_s": round(seen[0], 4),
                                     "on_n2_s": round(seen[1], 4),
                                     "on_n3_s": round(seen[2], 4)}},
                          f, indent=2)
                f.write("\n")
    finally:
        for p, _ in nodes:
            p.send_signal(signal.SIGTERM)
        for p, _ in nodes:
            p.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
