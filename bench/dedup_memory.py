#!/usr/bin/env python3
"""Measures what Redis holds per message for deduplication beyond
retention: a private redis-server (no persistence, a free loopback port),
the real publish script, retention of one message per group, then N
publishes of short texts piped at once; prints used_memory's growth per
message (every message but the last ends up as a dedup record).

    bench/dedup_memory.py            # 20,000 publishes
    bench/dedup_memory.py 100000
"""
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = (ROOT / "backend/src/history/redis_store/publish.lua").read_text()


def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def publishes(sha, count, start):
    for i in range(start, start + count):
        mid = str(uuid.uuid4())
        text = f"hello world {i}"
        message = json.dumps({"group": "g", "seq": 0, "id": mid, "text": text, "ts": i,
                              "from": {"client_id": mid, "verified": True}})
        keys = ["rc:{g}:epoch", "rc:{g}:seq", "rc:{g}:log", "rc:{g}:bytes", "rc:{g}:ids",
                f"rc:{{g}}:old:{mid}", "rc:groups", "rc:{g}:base"]
        # ARGV as the store passes them: retention of 1 message, a day's
        # dedup window, a digest of 16 hex digits.
        argv = ["g", mid, message, len(text), 1_000 + i, 1, 0, 0, 86_400_000, "e1", "", 0, "rc:{g}:chan",
                "0123456789abcdef"]
        yield resp("EVALSHA", sha, len(keys), *keys, *argv)


def main(count):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data,
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            cli = ["redis-cli", "-p", str(port)]
            while subprocess.run(cli + ["ping"], capture_output=True).returncode != 0:
                if server.poll() is not None:
                    sys.exit("redis-server did not start")
                time.sleep(0.1)
            sha = subprocess.run(cli + ["SCRIPT", "LOAD", SCRIPT], capture_output=True, text=True,
                                 check=True).stdout.strip()

            def used():
                info = subprocess.run(cli + ["INFO", "memory"], capture_output=True, text=True, check=True).stdout
                return int(next(line.split(":")[1] for line in info.splitlines() if line.startswith("used_memory:")))

            def pipe(n, start):
                result = subprocess.run(cli + ["--pipe"], input=b"".join(publishes(sha, n, start)),
                                        capture_output=True, check=True)
                if b"errors: 0" not in result.stdout:
                    sys.exit(result.stdout.decode())

            pipe(100, 0)  # the group exists, the script is warm
            before = used()
            pipe(count, 100)
            print(f"{(used() - before) / count:.0f} bytes of Redis memory per message ({count} publishes)")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
