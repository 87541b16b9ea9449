"""`make bench-peers`: this CMS against Kinto on PostgreSQL, side by side on this machine.

Optional, not run in CI: it needs Kinto (`kinto[postgresql]`, installed by `make bench-peers`
into `.venv-peers`) and a PostgreSQL server (CMS_PEERS_POSTGRES, default the test server at
127.0.0.1:5432). Both servers run under gunicorn with the same number of sync workers and
both keep their data in PostgreSQL (the CMS its index; its content in git, a commit per
edit). Rounds alternate between the two, so a shared machine's drift hits both alike.

Scenarios: GET one record; one editor's sequential PATCH (p50); 8 editors at once on 8
records (acknowledged edits per second, and Kinto's `409 please retry`); and the race of 10
editors sending the same If-Match (how many 200s per round: one is right, more is a lost
update). Usage:

    python tests/bench/peers.py --kinto .venv-peers/bin [--rounds 4] [--output peers.json]
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import (
    PY,
    cms_env,
    free_port,
    pct,
    request,
    serve,
)

PG = os.environ.get("CMS_PEERS_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
WORKERS = 4
EDITORS = 8
RACERS = 10
KINTO_AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench:bench-secret").decode()}
KINTO_INI = """[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = {url}
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.postgresql
kinto.permission_url = {url}
kinto.bucket_create_principals = system.Authenticated
kinto.userid_hmac_secret = bench-only-secret
multiauth.policies = basicauth
kinto.storage_pool_size = 5

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = WARNING
formatter = generic

[formatter_generic]
format = %(message)s
"""


@dataclass
class Row:
    scenario: str
    cms: float
    kinto: float
    unit: str
    better: str  # "lower" or "higher"
    note: str = ""

    @property
    def cms_wins(self) -> bool:
        return self.cms < self.kinto if self.better == "lower" else self.cms > self.kinto


# --- the two servers ---------------------------------------------------------------------------


def psql(database: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{database}", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@contextmanager
def kinto_server(kinto_bin: Path, work: Path) -> Iterator[str]:
    psql("postgres", "DROP DATABASE IF EXISTS cms_peers_kinto")
    psql("postgres", "CREATE DATABASE cms_peers_kinto")
    ini = work / "kinto.ini"
    ini.write_text(KINTO_INI.format(url=f"{PG}/cms_peers_kinto"))
    env = {**os.environ, "PYTHONPATH": ""}
    subprocess_run([str(kinto_bin / "kinto"), "migrate", "--ini", str(ini)], env)
    port = free_port()
    argv = [str(kinto_bin / "gunicorn"), "--paste", str(ini), "--workers", str(WORKERS),
            "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with serve(argv, env, f"{url}/v1/__heartbeat__"):
        yield url


def subprocess_run(argv: list[str], env: dict[str, str]) -> None:
    import subprocess

    subprocess.run(argv, env=env, check=True, capture_output=True)


@contextmanager
def cms_server(work: Path) -> Iterator[tuple[str, dict[str, str]]]:
    schema = "cms_peers"
    psql("test", f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    psql("test", f"CREATE SCHEMA {schema}")
    instance = work / "cms"
    env = {**cms_env(instance),
           "CMS_DATABASE_URL": f"postgresql+psycopg://{PG.removeprefix('postgresql://')}/test"
                               f"?options=-csearch_path%3D{schema}"}  # fmt: skip
    import subprocess

    def cli(*args: str) -> str:
        return subprocess.run([PY, "-m", "cms.cli", *args], env=env, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    cli("check")
    secret = cli("tokens", "create", "--name", "Bench", "--email", "bench@example.org",
                 "--role", "editor").strip()  # fmt: skip
    port = free_port()
    argv = [PY, "-m", "cms.cli", "serve", "--port", str(port), "--workers", str(WORKERS)]
    with serve(argv, env, f"http://127.0.0.1:{port}/healthz"):
        yield f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {secret}"}


# --- what a client does, the same way against both ---------------------------------------------


@dataclass(frozen=True)
class Target:
    """One record on one server: where it is, how to authenticate, how to patch it."""

    url: str
    auth: dict[str, str]
    kinto: bool

    def read(self) -> tuple[int, str]:
        status, headers, _ = request("GET", self.url + ("" if self.kinto else "?ref=main"),
                                     headers=self.auth)  # fmt: skip
        return status, headers.get("ETag", "")

    def patch(self, value: str, etag: str) -> tuple[int, str]:
        body = {"data": {"bio": value}} if self.kinto else {"bio": value}
        status, headers, _ = request("PATCH", self.url, body, {**self.auth, "If-Match": etag})
        return status, headers.get("ETag", "")


def kinto_records(url: str, n: int) -> list[Target]:
    base = f"{url}/v1/buckets/bench/collections/people/records"
    request("PUT", f"{url}/v1/buckets/bench", {"data": {}}, KINTO_AUTH)
    request("PUT", f"{url}/v1/buckets/bench/collections/people", {"data": {}}, KINTO_AUTH)
    for i in range(n):
        status, _, _ = request("PUT", f"{base}/p{i}", {"data": {"name": f"P {i}", "bio": ""}},
                               KINTO_AUTH)  # fmt: skip
        assert status in (200, 201), status
    return [Target(f"{base}/p{i}", KINTO_AUTH, True) for i in range(n)]


def cms_records(url: str, auth: dict[str, str], n: int) -> list[Target]:
    out = []
    for i in range(n):
        status, _, body = request("POST", f"{url}/api/v1/people", {"name": f"Peer {i}"}, auth)
        assert status == 201, body
        out.append(Target(f"{url}/api/v1/people/{body['slug']}", auth, False))
    return out


def timed(call: Callable[[], tuple[int, str]]) -> tuple[float, int, str]:
    start = time.perf_counter()
    status, etag = call()
    return (time.perf_counter() - start) * 1000, status, etag


def sequential(target: Target, n: int) -> tuple[list[float], int]:
    """n PATCHes, each from the ETag the last returned: latencies, refusals."""
    _, etag = target.read()
    times, refused = [], 0
    for i in range(n):
        ms, status, new = timed(functools.partial(target.patch, f"seq {i} {time.time()}", etag))
        if status == 200:
            times.append(ms)
            etag = new
        else:
            refused += 1
            _, etag = target.read()
    return times, refused


def _editor(args: tuple[Target, int]) -> tuple[int, int, int]:
    """One editor process: n edits from its own ETag; (acknowledged, 409s, other refusals)."""
    target, n = args
    _, etag = target.read()
    acked = conflicts = other = 0
    for i in range(n):
        status, new = target.patch(f"conc {i} {time.time()}", etag)
        if status == 200:
            acked += 1
            etag = new
        else:
            conflicts += status == 409
            other += status != 409
            _, etag = target.read()
    return acked, conflicts, other


def race(target: Target) -> int:
    """RACERS editors send the same If-Match at once: how many were told 200."""
    _, etag = target.read()
    barrier = threading.Barrier(RACERS)
    wins: list[int] = []

    def racer(i: int) -> None:
        barrier.wait(timeout=30)
        status, _ = target.patch(f"racer {i} {time.time()}", etag)
        wins.append(status == 200)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sum(wins)


# --- the run ------------------------------------------------------------------------------------


def run(kinto_bin: Path, rounds: int, edits: int) -> list[Row]:
    stats: dict[str, dict[str, list[float]]] = {
        side: {"get": [], "patch": [], "rate": [], "conflicts": [], "other": [], "race": []}
        for side in ("cms", "kinto")
    }
    with (
        tempfile.TemporaryDirectory(prefix="cms-peers-") as tmp,
        get_context("fork").Pool(EDITORS) as pool,
    ):
        work = Path(tmp)
        with kinto_server(kinto_bin, work) as kinto_url, cms_server(work) as (cms_url, auth):
            sides = {
                "cms": cms_records(cms_url, auth, EDITORS + 2),
                "kinto": kinto_records(kinto_url, EDITORS + 2),
            }
            for targets in sides.values():  # warm every worker up
                sequential(targets[0], 8)
            for _ in range(rounds):
                for side, targets in sides.items():
                    s = stats[side]
                    s["get"] += [timed(targets[0].read)[0] for _ in range(edits)]
                    times, _ = sequential(targets[0], edits)
                    s["patch"] += times
                    start = time.perf_counter()
                    results = pool.map(_editor, [(t, edits // 2) for t in targets[1:9]])
                    elapsed = time.perf_counter() - start
                    s["rate"].append(sum(a for a, _, _ in results) / elapsed)
                    s["conflicts"].append(sum(c for _, c, _ in results))
                    s["other"].append(sum(o for _, _, o in results))
                    s["race"] += [race(targets[9]) for _ in range(5)]
    c, k = stats["cms"], stats["kinto"]
    races = len(c["race"])
    return [
        Row("GET one record, p50", pct(c["get"], 50), pct(k["get"], 50), "ms", "lower"),
        Row("sequential PATCH, p50", pct(c["patch"], 50), pct(k["patch"], 50), "ms", "lower",
            f"p99 {pct(c['patch'], 99):.1f} against {pct(k['patch'], 99):.1f} ms"),
        Row(f"{EDITORS} concurrent editors, distinct records", sum(c["rate"]) / rounds,
            sum(k["rate"]) / rounds, "acknowledged edits/s", "higher",
            f"409 please retry: CMS {sum(c['conflicts']):g}, Kinto {sum(k['conflicts']):g}; "
            f"other refusals: CMS {sum(c['other']):g}, Kinto {sum(k['other']):g}; every CMS "
            "edit is a git commit"),
        Row(f"same If-Match race, {RACERS} editors: 200s per round (1 is right)",
            sum(c["race"]) / races, sum(k["race"]) / races, "200s per round", "lower",
            f"{races} rounds; lost updates: CMS {sum(c['race']) - races:g}, "
            f"Kinto {sum(k['race']) - races:g}"),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kinto", type=Path, required=True, help="bin folder of Kinto's venv")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--edits", type=int, default=50, help="per round and scenario")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    started = time.time()
    rows = run(args.kinto, args.rounds, args.edits)
    print(f"\n{os.cpu_count()} cores shared by both servers and the clients; gunicorn, "
          f"{WORKERS} sync workers each; both on PostgreSQL; {args.rounds} rounds alternating; "
          f"{time.time() - started:.0f} s\n")  # fmt: skip
    print("| scenario | CMS | Kinto-PG | unit | better | CMS ahead | notes |")
    print("|---|---:|---:|---|---|---|---|")
    for r in rows:
        print(f"| {r.scenario} | {r.cms:.2f} | {r.kinto:.2f} | {r.unit} | {r.better} | "
              f"{'yes' if r.cms_wins else 'NO'} | {r.note} |")  # fmt: skip
    if args.output:
        args.output.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
