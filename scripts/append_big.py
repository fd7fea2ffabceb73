#!/usr/bin/env python3
"""APPEND cost: COUNT APPENDs of SIZE bytes to one key on one connection (default 200 ×
1 MiB), against a RESP server on 127.0.0.1:PORT; prints the seconds they took. Checks
every reply (the running length) and the final STRLEN; exits 1 on a mismatch.

    scripts/append_big.py PORT [COUNT [SIZE]]

Used by scripts/bench-kv.sh (APPEND_BIG=1); needs redis-py.
"""
import sys
import time

import redis

port = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
size = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 20
r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=600)
r.delete("big:k")
chunks = [bytes([97 + i % 26]) * size for i in range(26)]
start = time.monotonic()
for i in range(count):
    n = r.append("big:k", chunks[i % 26])
    if n != (i + 1) * size:
        sys.exit(f"APPEND {i}: replied {n}, expected {(i + 1) * size}")
elapsed = time.monotonic() - start
if r.strlen("big:k") != count * size:
    sys.exit(f"STRLEN {r.strlen('big:k')}, expected {count * size}")
print(f"{elapsed:.2f}")
