"""Concurrent uploads against a local `crystalmela serve`: throughput, latency, nothing lost.

    python benchmarks/bench_web.py [--uploads 50] [--concurrency 50] [--file examples/LiCoO2.RAW]

Starts the service on 127.0.0.1 (a free port, a fresh data folder; nothing else is contacted),
registers one user, then sends ``--uploads`` POST /api/predict requests (capped at 200), up to
``--concurrency`` at a time, each with the file. Prints uploads per second, p50 / p95 latency, the
status codes, and checks that every upload is a completed run in the database. As a reference from
the same run, it first times one upload alone (after a first one that loads the models).
"""
from __future__ import annotations

import argparse
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--file", type=Path, default=Path(__file__).parent.parent / "examples" / "LiCoO2.RAW")
    args = ap.parse_args(argv)
    import httpx

    n = max(1, min(args.uploads, 200))
    data = args.file.read_bytes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="crystalmela-bench-web-"))
    server = subprocess.Popen([sys.executable, "-m", "crystalmela", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--data-dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/api/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = httpx.Client(base_url=base, timeout=300)
        token = client.post("/api/register", json={"email": "bench@example.org",
                                                   "password": "benchmark run 50"}).json()["csrf_token"]
        headers = {"X-CSRF-Token": token}

        def upload(i: int) -> tuple[float, int]:
            t = time.perf_counter()
            r = client.post("/api/predict", headers=headers,
                            files=[("files", (f"{i:03d}-{args.file.name}", data))])
            return time.perf_counter() - t, r.status_code

        upload(-2)                                   # loads the models
        single, status = upload(-1)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
            results = list(pool.map(upload, range(n)))
        wall = time.perf_counter() - t0
        lat = np.array([r[0] for r in results])
        codes: dict[int, int] = {}
        for _, c in results:
            codes[c] = codes.get(c, 0) + 1
        con = sqlite3.connect(folder / "crystalmela.db")
        done = con.execute("select count(*) from runs where status = 'done' and finished is not null").fetchone()[0]
        report = {"uploads": n, "concurrency": args.concurrency, "wall_s": round(wall, 2),
                  "uploads_per_s": round(n / wall, 2), "p50_s": round(float(np.percentile(lat, 50)), 3),
                  "p95_s": round(float(np.percentile(lat, 95)), 3), "single_upload_s": round(single, 3),
                  "status_codes": codes, "runs_done_in_db": done, "expected_runs": n + 2}
        print(json.dumps(report, indent=1))
        ok = done == n + 2 and codes == {200: n} and status == 200
        print("every upload is a completed run in the database" if ok else "MISSING OR FAILED RUNS")
        return 0 if ok else 1
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
