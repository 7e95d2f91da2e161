#!/usr/bin/env python3
"""Cluster-scale benchmark on real processes (docs/benchmarks.md, "Scale").

Runs N link-shortener nodes, half in each of two network namespaces this script creates
(joined by a bridge, so a partition is one command), under each neighbour policy given,
and measures, for W links written through the JSON API spread over every node while one
node is SIGKILLed and restarted and the two halves are partitioned and healed:
  - time from the last write until every node holds every link,
  - links per node (NodeMetrics::peers) and members each lists as up,
  - bytes sent by all nodes per write, and RSS per node.
With --check it asserts what the test suite relies on (every node converges and lists every
member up; under random:K fewer links than a full mesh) and exits 1 otherwise.

Needs root (ip netns, a bridge) and iproute2. Every address is inside the namespaces and
the bridge this script creates (10.231.0.0/24); all of them are removed on exit.

usage: cluster_scale_bench.py PATH/TO/link-shortener [--nodes N] [--writes W]
           [--policies all,random:4] [--json FILE] [--check]
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SUBNET = "10.231.0"
BRIDGE_IP = f"{SUBNET}.254"


def run(*args):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Network:
    """Two namespaces, A (10.231.0.1) and B (10.231.0.2), on a bridge in this namespace
    (10.231.0.254): this namespace reaches both; partition() isolates the two bridge ports
    from each other, heal() joins them again."""

    def __init__(self):
        tag = str(os.getpid() % 100000)
        self.bridge = f"dcs{tag}br"
        self.ns = {"A": f"dcs{tag}A", "B": f"dcs{tag}B"}
        self.ports = {side: f"dcs{tag}{side}" for side in "AB"}
        self.ip = {"A": f"{SUBNET}.1", "B": f"{SUBNET}.2"}
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for side in "AB":
            ns, port = self.ns[side], self.ports[side]
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", port, "master", self.bridge, "up")
            run("ip", "-n", ns, "addr", "add", f"{self.ip[side]}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def partition(self):
        for port in self.ports.values():
            run("bridge", "link", "set", "dev", port, "isolated", "on")

    def heal(self):
        for port in self.ports.values():
            run("bridge", "link", "set", "dev", port, "isolated", "off")

    def close(self):
        for ns in self.ns.values():
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)


class Node:
    def __init__(self, binary, net, root, index, side, seed, policy):
        self.name = f"n{index:02d}"
        self.ns = net.ns[side]
        self.ip = net.ip[side]
        self.cluster = f"{self.ip}:{7000 + index}"
        self.http = 8000 + index
        self.data = os.path.join(root, self.name)
        os.makedirs(self.data, exist_ok=True)
        self.args = ["ip", "netns", "exec", self.ns, binary, "--name", self.name,
                     "--listen", self.cluster, "--advertise", self.cluster,
                     "--http", f"{self.ip}:{self.http}", "--data-dir", self.data,
                     "--secret-file", os.path.join(root, "secret"), "--neighbours", policy,
                     "--log-level", "error"]
        if seed:
            self.args += ["--seeds", seed]
        self.proc = None
        self.start()

    def start(self):
        # ip netns exec execs the program: the pid is the node's own (for RSS and SIGKILL).
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "http" not in line:
            raise SystemExit(f"{self.name} did not start: {line!r}")

    def url(self, path):
        return f"http://{self.ip}:{self.http}{path}"

    def get(self, path, timeout=2.0):
        with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
            return r.read().decode()

    def metric(self, text, name):
        m = re.search(rf"^{name} (\d+)", text, re.M)
        return int(m.group(1)) if m else -1

    def figures(self):
        text = self.get("/metrics")
        return {"links": self.metric(text, "link_shortener_links"),
                "peers": self.metric(text, "deltacrdt_node_peers"),
                "bytes_out": self.metric(text, "deltacrdt_node_bytes_out_total")}

    def members_up(self):
        return self.get("/_cluster").count('"status":"up"')

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post_link(node, url):
    body = json.dumps({"url": url}).encode()
    req = urllib.request.Request(node.url("/api/links"), data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status == 201


def wait_for(what, check, limit):
    until = time.monotonic() + limit
    while time.monotonic() < until:
        try:
            if check():
                return True
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.1)
    print(f"  timed out after {limit:.0f} s waiting for {what}", file=sys.stderr)
    return False


def run_policy(binary, n, writes, policy, phase_s, partition_s):
    root = tempfile.mkdtemp(prefix="deltacrdt-scale-")
    net = Network()
    nodes = []
    try:
        with open(os.path.join(root, "secret"), "w") as f:
            f.write("scale-benchmark-secret-0123456789\n")
        os.chmod(os.path.join(root, "secret"), 0o600)
        half = n // 2
        for i in range(n):
            side = "A" if i < half else "B"
            seed = nodes[0].cluster if nodes else None
            nodes.append(Node(binary, net, root, i, side, seed, policy))
        joined = wait_for("every node to list every member up",
                          lambda: all(x.members_up() == n - 1 for x in nodes), 120)

        # The writes, over every live node; the events at fixed fractions of them.
        victim = nodes[half + 1]
        live = list(nodes)
        lock = threading.Lock()
        failed = []
        events = {writes // 4: "kill", writes * 2 // 5: "restart", writes // 2: "partition",
                  writes * 3 // 4: "heal"}
        started = time.monotonic()

        def write(i, targets):
            node = targets[i % len(targets)]
            try:
                if not post_link(node, f"https://scale.example/{policy}/{i}"):
                    raise OSError("not created")
            except (OSError, urllib.error.URLError):
                with lock:
                    failed.append(i)

        done = 0
        partitioned_at = healed_at = None
        phase_started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            for stop in sorted(events) + [writes]:
                targets = list(live)
                list(pool.map(lambda i: write(i, targets), range(done, stop)))
                done = stop
                event = events.get(stop)
                # Each phase lasts long enough for the cluster to notice the last event (a
                # partition is seen when links time out: 3 s without a heartbeat).
                if event:
                    least = partition_s if event == "heal" else phase_s
                    time.sleep(max(0.0, least - (time.monotonic() - phase_started)))
                    phase_started = time.monotonic()
                if event == "kill":
                    victim.kill()
                    live.remove(victim)
                elif event == "restart":
                    victim.start()
                    live.append(victim)
                elif event == "partition":
                    net.partition()
                    partitioned_at = time.monotonic()
                elif event == "heal":
                    net.heal()
                    healed_at = time.monotonic()
        last_write = time.monotonic()
        # Writes that failed (none expected: a node is killed and restarted between batches)
        # are retried once on the first node, so that every node must end with `writes`.
        retry = list(failed)
        for i in retry:
            write(i, [nodes[0]])
        if retry:
            last_write = time.monotonic()
        converged = wait_for(f"every node to hold {writes} links",
                             lambda: all(x.figures()["links"] == writes for x in nodes),
                             60 + writes / 100)
        converge_s = time.monotonic() - last_write
        rejoined = wait_for("every node to list every member up again",
                            lambda: all(x.members_up() == n - 1 for x in nodes), 60)
        rejoin_s = time.monotonic() - last_write
        time.sleep(3)  # links nobody wants close two gossip rounds after they are seen
        figures = [x.figures() for x in nodes]
        members = [x.members_up() for x in nodes]
        rss = [x.rss_kib() for x in nodes]
        peers = [f["peers"] for f in figures]
        result = {
            "nodes": n, "policy": policy, "writes": writes, "joined": joined,
            "converged": converged and rejoined, "converge_s": round(converge_s, 2),
            "all_up_s": round(rejoin_s, 2),
            "write_s": round(last_write - started, 2), "writes_retried": len(retry),
            "partition_s": round((healed_at or 0) - (partitioned_at or 0), 2),
            "links_min": min(peers), "links_avg": round(sum(peers) / n, 1),
            "links_max": max(peers), "members_up_min": min(members),
            "bytes_per_write": round(sum(f["bytes_out"] for f in figures) / writes),
            "rss_mib_avg": round(sum(rss) / n / 1024, 1),
            "rss_mib_max": round(max(rss) / 1024, 1),
        }
        return result
    finally:
        for x in nodes:
            x.stop()
        net.close()
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--writes", type=int, default=10000)
    ap.add_argument("--policies", default="all,random:4")
    ap.add_argument("--phase-seconds", type=float, default=5.0,
                    help="least time between the events (kill, restart, partition, heal)")
    ap.add_argument("--partition-seconds", type=float, default=15.0,
                    help="least time the halves stay apart: longer than 10 gossip intervals "
                         "(10 s), so that each side counts the other down before the heal")
    ap.add_argument("--json")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("bridge"):
        # 77: "skipped" to meson test; the suite's machines run as root.
        print("cluster_scale_bench: needs root and iproute2 (ip, bridge)", file=sys.stderr)
        sys.exit(77)
    if a.nodes < 4 or a.nodes > 200 or a.writes < 20:
        raise SystemExit("cluster_scale_bench: --nodes 4-200, --writes at least 20")
    results = []
    print(f"{a.nodes} nodes, {a.writes} writes; one node SIGKILLed and restarted, the halves "
          "partitioned and healed while writing")
    print(f"{'policy':>10} {'write s':>8} {'converge s':>11} {'all up s':>9} "
          f"{'links min/avg/max':>18} {'bytes/write':>12} {'RSS MiB avg/max':>16}")
    for policy in a.policies.split(","):
        r = run_policy(a.binary, a.nodes, a.writes, policy, a.phase_seconds, a.partition_seconds)
        results.append(r)
        print(f"{policy:>10} {r['write_s']:>8} {r['converge_s']:>11} {r['all_up_s']:>9} "
              f"{r['links_min']:>6}/{r['links_avg']}/{r['links_max']:<5} "
              f"{r['bytes_per_write']:>12} {r['rss_mib_avg']:>8}/{r['rss_mib_max']}"
              + ("" if r["converged"] else "  NOT CONVERGED"), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"benchmark": "cluster_scale", "results": results}, f, indent=1)
            f.write("\n")
    if a.check:
        bad = []
        for r in results:
            if not (r["joined"] and r["converged"]):
                bad.append(f"{r['policy']}: did not converge")
            if r["members_up_min"] != a.nodes - 1:
                bad.append(f"{r['policy']}: a node lists {r['members_up_min']} members up")
            if r["policy"].startswith("random:"):
                # Each node wants at most k + 1 links (its ring neighbours and its draws, the
                # successor among both), and every link is wanted by an end.
                k = int(r["policy"].split(":")[1])
                if r["links_avg"] > min(2 * (k + 1), a.nodes - 2):
                    bad.append(f"{r['policy']}: {r['links_avg']} links per node on average")
        for b in bad:
            print("FAILED: " + b, file=sys.stderr)
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
