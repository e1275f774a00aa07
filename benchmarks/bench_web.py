"""Concurrent uploads against a local `crystalmela serve`: throughput, latency, nothing lost.

    python benchmarks/bench_web.py [--uploads 50] [--concurrency 50] [--file examples/LiCoO2.RAW] [--kill-after S]

Starts the service on 127.0.0.1 (a free port, a fresh data folder; nothing else is contacted),
registers one user, then sends ``--uploads`` POST /api/predict requests (capped at 200), up to
``--concurrency`` at a time, each with the file. Prints uploads per second, p50 / p95 latency, the
status codes, and checks that every upload is a completed run in the database. As a reference from
the same run, it first times one upload alone (after a first one that loads the models).

Then the fault: a second burst of the same size, the server killed with SIGKILL ``--kill-after``
seconds into it (default 0.9 × the first burst's wall time), and started again on the same folder. Every upload the server answered must be a
``done`` run, every other row ``interrupted`` (none ``running``), every row's file stored and no
stored file without a row (start-up would move one to ``uploads/orphans/``).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
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
    ap.add_argument("--kill-after", type=float, default=None,
                    help="seconds into the second burst (default: 0.9 × the first burst's wall time, "
                         "when some uploads are answered and others in flight)""")
    args = ap.parse_args(argv)
    import httpx

    n = max(1, min(args.uploads, 200))
    data = args.file.read_bytes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="crystalmela-bench-web-"))
    base = f"http://127.0.0.1:{port}"
    server = _serve(folder, port, base, httpx)
    try:
        client = httpx.Client(base_url=base, timeout=300)
        token = client.post("/api/register", json={"email": "bench@example.org",
                                                   "password": "benchmark run 50"}).json()["csrf_token"]
        headers = {"X-CSRF-Token": token}

        def upload(i: int) -> tuple[float, int]:
            t = time.perf_counter()
            try:
                r = client.post("/api/predict", headers=headers,
                                files=[("files", (f"{i:03d}-{args.file.name}", data))])
            except httpx.HTTPError:
                return time.perf_counter() - t, 0          # the server went away mid-request
            return time.perf_counter() - t, r.status_code

        upload(-2)                                   # loads the models
        single, status = upload(-1)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
            results = list(pool.map(upload, range(n)))
        wall = time.perf_counter() - t0
        lat = np.array([r[0] for r in results])
        codes = _count(c for _, c in results)
        con = sqlite3.connect(folder / "crystalmela.db")
        done = con.execute("select count(*) from runs where status = 'done' and finished is not null").fetchone()[0]
        con.close()
        report = {"uploads": n, "concurrency": args.concurrency, "wall_s": round(wall, 2),
                  "uploads_per_s": round(n / wall, 2), "p50_s": round(float(np.percentile(lat, 50)), 3),
                  "p95_s": round(float(np.percentile(lat, 95)), 3), "single_upload_s": round(single, 3),
                  "status_codes": codes, "runs_done_in_db": done, "expected_runs": n + 2}
        ok = done == n + 2 and codes == {200: n} and status == 200

        # ---- the fault: SIGKILL mid-burst, then a restart on the same folder
        with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
            burst = [pool.submit(upload, 1000 + i) for i in range(n)]
            kill_after = args.kill_after if args.kill_after is not None else 0.9 * wall
            time.sleep(kill_after)
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            answered = _count(f.result()[1] for f in burst)
        server = _serve(folder, port, base, httpx)
        con = sqlite3.connect(folder / "crystalmela.db")
        rows = con.execute("select status, stored_path from runs where filename >= '1000'").fetchall()
        con.close()
        statuses = _count(r[0] for r in rows)
        uploads = folder / "uploads"
        named = {str(Path(r[1])) for r in rows} | {str(Path(r[0])) for r in sqlite3.connect(
            folder / "crystalmela.db").execute("select stored_path from runs").fetchall()}
        stored = [f for f in uploads.glob("*/*/*") if f.is_file() and f.parts[-3] != "orphans"]
        orphans = [f for f in (uploads / "orphans").glob("*")] if (uploads / "orphans").exists() else []
        missing = [r[1] for r in rows if not Path(r[1]).is_file() and r[0] != "failed"]
        fault = {"kill_after_s": round(kill_after, 2), "answered_before_kill": answered, "rows_after_restart": statuses,
                 "still_running": statuses.get("running", 0), "orphan_files": len(orphans)
                 + sum(str(f) not in named for f in stored), "rows_without_file": len(missing)}
        fault_ok = (fault["still_running"] == 0 and fault["orphan_files"] == 0 and not missing
                    and statuses.get("done", 0) >= answered.get(200, 0)
                    and set(statuses) <= {"done", "interrupted"})
        print(json.dumps({**report, "fault": fault}, indent=1))
        print("every upload is a completed run in the database" if ok else "MISSING OR FAILED RUNS")
        print("after SIGKILL and restart: every answered upload done, the rest interrupted, no orphans"
              if fault_ok else "RUNS LEFT RUNNING, LOST OR ORPHANED AFTER THE KILL")
        return 0 if ok and fault_ok else 1
    finally:
        server.terminate()
        server.wait(timeout=10)


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _serve(folder: Path, port: int, base: str, httpx) -> subprocess.Popen:
    """``crystalmela serve`` on ``folder``, once it answers."""
    server = subprocess.Popen([sys.executable, "-m", "crystalmela", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--data-dir", str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"{base}/api/models", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("bench_web.py: the server did not start within 30 s")


if __name__ == "__main__":
    sys.exit(main())
