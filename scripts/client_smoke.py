#!/usr/bin/env python3
"""Real-client smoke tests: redis-py (RESP2 and RESP3), redis-cli (incl. --scan and
inline use) and redis-benchmark against a freshly started keel binary.

    python scripts/client_smoke.py path/to/keel

Prints one line per check and closes with 'smoke: N passed, N failed'. Loopback only.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import redis

KEEL = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/keel")
results = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure
            results.append((name, e))
            print(f"FAIL {name}: {e!r}", flush=True)
            traceback.print_exc()
        return fn
    return wrap


def blob(v):
    return struct.pack(f"<{len(v)}f", *v)


def main():
    data = tempfile.mkdtemp(prefix="keel-smoke-", dir="/tmp")
    port = free_port()
    log = open(os.path.join(data, "keel.log"), "w")
    proc = subprocess.Popen(
        [KEEL, "--data-dir", os.path.join(data, "d"), "--resp-addr", f"127.0.0.1:{port}", "--shards", "2",
         "--router-threads", "1"],
        stderr=log, start_new_session=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if redis.Redis(port=port).ping():
                    break
            except redis.ConnectionError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("keel did not start; see " + log.name)
                time.sleep(0.1)
        run_checks(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = "timeout"
        ok = rc == 0
        results.append(("SIGTERM exits 0", None if ok else AssertionError(f"exit {rc}")))
        print(("ok   " if ok else "FAIL ") + "SIGTERM exits 0", flush=True)
    failed = sum(1 for _, e in results if e)
    print(f"smoke: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def run_checks(port):
    for proto in (2, 3):
        r = redis.Redis(port=port, protocol=proto, decode_responses=True)

        @check(f"redis-py RESP{proto}: strings")
        def _():
            r.flushall()
            assert r.set("a:1", "x") is True
            assert r.get("a:1") == "x"
            assert r.set("a:1", "y", nx=True) is None
            assert r.set("a:1", "y", xx=True, get=True) == "x"
            assert r.incrby("b:n", 5) == 5 and r.decr("b:n") == 4
            assert r.append("a:1", "z") == 2 and r.strlen("a:1") == 2
            r.mset({"c:1": "1", "d:1": "2", "e:1": "3"})
            assert r.mget(["c:1", "missing", "e:1", "d:1"]) == ["1", None, "3", "2"]
            assert r.exists("c:1", "c:1", "nope") == 2
            assert r.delete("c:1", "d:1", "nope") == 2
            assert r.getdel("e:1") == "3" and r.get("e:1") is None
            assert r.type("a:1") == "string" and r.type("zz") == "none"
            try:
                r.incr("a:1")
                raise AssertionError("INCR on a non-integer must fail")
            except redis.ResponseError as e:
                assert "not an integer" in str(e)

        @check(f"redis-py RESP{proto}: keyspace")
        def _():
            r.flushall()
            keys = {f"t{i}:k{j}" for i in range(8) for j in range(25)}
            r.mset({k: "v" for k in keys})
            assert r.dbsize() == len(keys)
            assert set(r.keys("t3:*")) == {k for k in keys if k.startswith("t3:")}
            assert set(r.scan_iter(count=7)) == keys
            assert set(r.scan_iter(match="t1:*")) == {k for k in keys if k.startswith("t1:")}
            info = r.info()
            assert info["db0"]["keys"] == len(keys)
            assert r.config_get("appendonly")["appendonly"] in ("yes", "no")

        @check(f"redis-py RESP{proto}: client_setname, client_info, client_list")
        def _():
            other = redis.Redis(port=port, protocol=proto, decode_responses=True, client_name=f"other{proto}")
            other.ping()
            r.client_setname(f"smoke{proto}")
            me = r.client_info()
            assert me["name"] == f"smoke{proto}" and me["resp"] == str(proto) and me["db"] == 0, me
            names = {c["name"] for c in r.client_list()}
            assert {f"smoke{proto}", f"other{proto}"} <= names, names
            other.close()

        @check(f"redis-py RESP{proto}: pipeline")
        def _():
            p = r.pipeline(transaction=False)
            for i in range(500):
                p.set(f"p:{i}", i)
                p.incr("p:count")
            out = p.execute()
            assert out[-1] == 500 and all(x is True for x in out[0::2])

        @check(f"redis-py RESP{proto}: vectors")
        def _():
            rb = redis.Redis(port=port, protocol=proto)
            rb.execute_command("SKEG.VINDEX.DROP", "v:idx") if b"v:idx" in b" ".join(
                rb.execute_command("SKEG.VINDEX.LIST") or []) else None
            assert rb.execute_command("SKEG.VINDEX.CREATE", "v:idx", 3, "f32", "flat") in (True, b"OK", "OK")
            rb.execute_command("SKEG.VSET", "v:idx", 1, blob([1, 0, 0]))
            rb.execute_command("SKEG.VSET", "v:idx", 2, blob([0, 1, 0]))
            rb.execute_command("SKEG.VSET", "v:idx", 3, blob([1, 1, 0]))
            res = rb.execute_command("SKEG.VSEARCH", "v:idx", 2, 10, blob([1, 0.1, 0]))
            assert int(res[0]) == 1 and int(res[2]) == 3, res
            assert abs(float(res[1]) - 0.995037) < 1e-4, res
            try:
                rb.execute_command("SKEG.VSET", "v:idx", 4, blob([1, 2]))
                raise AssertionError("wrong dimension must fail")
            except redis.ResponseError:
                pass
            assert rb.execute_command("SKEG.VINDEX.DROP", "v:idx") in (True, b"OK")

    @check("redis-cli: inline PING, SET/GET, --scan")
    def _():
        cli = ["redis-cli", "-p", str(port)]
        assert subprocess.check_output(cli + ["ping"], text=True).strip() == "PONG"
        subprocess.check_call(cli + ["flushall"], stdout=subprocess.DEVNULL)
        for i in range(50):
            subprocess.check_call(cli + ["set", f"s{i % 5}:{i}", str(i)], stdout=subprocess.DEVNULL)
        out = subprocess.check_output(cli + ["--scan"], text=True).split()
        assert sorted(out) == sorted(f"s{i % 5}:{i}" for i in range(50)), out
        out = subprocess.check_output(cli + ["get", "s1:1"], text=True).strip()
        assert out == "1", out
        # telnet-style inline command
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(100) == b"+PONG\r\n"

    @check("redis-benchmark: set,get,incr,mset -P 16 completes")
    def _():
        out = subprocess.check_output(
            ["redis-benchmark", "-p", str(port), "-t", "set,get,incr,mset", "-n", "20000", "-c", "20", "-P", "16",
             "-q"], text=True, timeout=120)
        for t in ("SET", "GET", "INCR", "MSET"):
            assert t in out, out


if __name__ == "__main__":
    sys.exit(main())
