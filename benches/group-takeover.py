#!/usr/bin/env python3
"""Consumer-group takeover times with real processes.

    benches/group-takeover.py [--bin-dir target/debug] [--rounds 5]
        [--session-timeout-ms 3000] [--heartbeat-interval-ms 250]

Starts a broker, a six-partition topic, a producer writing 1,000 records/s
spread over all partitions (`sluice produce`), and three
`sluice consume --group` members whose output lines are timestamped on
arrival. Each round stops one member and measures the time from the signal
to the first record of one of its partitions printed by another member:

- clean leave: SIGTERM (the member commits, sends LeaveGroup, exits);
- crash: SIGKILL (the coordinator notices when the session times out).

A new member replaces the stopped one before the next round. Prints each
round and the median and maximum per kind.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOPIC = "takeover"
PARTITIONS = 6


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Member:
    """A `sluice consume --group` process; stdout lines `PARTITION OFFSET`
    are kept with their arrival time."""

    def __init__(self, cli, addr, args):
        self.proc = subprocess.Popen(
            [cli, "--broker", addr, "consume", TOPIC, "--group", "bench",
             "--format", "%p %o", "--verbose"] + args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines = []  # (arrival time, partition)
        self.stderr = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), int(line.split()[0])))

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def partitions_since(self, t):
        return {p for (at, p) in list(self.lines) if at >= t}


def wait(what, cond, timeout=60):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(__file__), "..", "target", "debug"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--session-timeout-ms", type=int, default=3000)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=250)
    a = ap.parse_args()
    broker_bin = os.path.join(a.bin_dir, "sluice-broker")
    cli = os.path.join(a.bin_dir, "sluice")
    tmp = tempfile.mkdtemp()
    addr = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(tmp, "broker.log"), "w")
    broker = subprocess.Popen(
        [broker_bin, "--data-dir", os.path.join(tmp, "data"), "--listen", addr,
         "--metrics-listen", f"127.0.0.1:{free_port()}"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    for line in broker.stdout:
        if "listening on" in line:
            break
    threading.Thread(target=lambda: [None for _ in broker.stdout], daemon=True).start()
    subprocess.run([cli, "--broker", addr, "topic", "create", TOPIC, "--partitions", str(PARTITIONS)],
                   check=True, stdout=subprocess.DEVNULL)
    producer = subprocess.Popen([cli, "--broker", addr, "produce", TOPIC, "--key-separator", ":"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)

    def produce():
        i = 0
        while True:
            try:
                producer.stdin.write(f"k{i % 60}:v{i}\n")
                producer.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            i += 1
            time.sleep(0.001)
    threading.Thread(target=produce, daemon=True).start()

    member_args = ["--session-timeout-ms", str(a.session_timeout_ms),
                   "--heartbeat-interval-ms", str(a.heartbeat_interval_ms),
                   "--commit-interval-ms", "1000"]
    members = [Member(cli, addr, member_args) for _ in range(3)]
    results = {"leave": [], "kill": []}
    try:
        for r in range(a.rounds * 2):
            kind = "leave" if r % 2 == 0 else "kill"
            # Settled: every member read its even share of the partitions
            # in the last second, together all of them.
            def settled():
                t = time.monotonic() - 1.0
                seen = [m.partitions_since(t) for m in members]
                return (all(len(s) == PARTITIONS // len(members) for s in seen)
                        and len(set().union(*seen)) == PARTITIONS)
            wait("a settled group", settled)
            victim = members.pop(0)
            mine = victim.partitions_since(time.monotonic() - 1.0)
            t0 = time.monotonic()
            victim.proc.send_signal(signal.SIGTERM if kind == "leave" else signal.SIGKILL)

            def taken_over():
                return all(any(p in m.partitions_since(t0) for m in members) for p in mine)
            wait("takeover", taken_over, timeout=a.session_timeout_ms / 1000 + 30)
            took = time.monotonic() - t0
            victim.proc.wait()
            results[kind].append(took)
            print(f"round {r // 2 + 1} {kind:5}: {took * 1000:7.0f} ms until all of {sorted(mine)} were read by others",
                  flush=True)
            members.append(Member(cli, addr, member_args))
    finally:
        for m in members:
            m.proc.kill()
        producer.kill()
        broker.kill()
    for kind, xs in results.items():
        if xs:
            print(f"{kind}: median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms "
                  f"over {len(xs)} rounds (session timeout {a.session_timeout_ms} ms, "
                  f"heartbeat {a.heartbeat_interval_ms} ms)")


if __name__ == "__main__":
    main()
