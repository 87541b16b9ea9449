"""`make bench`: the CMS against baselines measured in the same run on the same machine.

Every scenario prints the CMS's figure, the baseline's, and their ratio; absolute numbers on a
shared 2-core machine are noise, ratios are the result. Usage:

    python tests/bench/bench.py [--quick | --smoke] [--only reads,edits,...] [--output results.json]
"""

from __future__ import annotations

import argparse
import io
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"}  # fmt: skip
PERSON = "/api/v1/people/valentin-barriere"
WORKSHOP = "/api/v1/workshops/terrabytes-icml25"


@dataclass
class Profile:
    name: str
    seconds: float  # per wrk run
    edits: int  # sequential edits measured
    concurrent: int  # edits per client, 8 clients, per round
    rounds: int  # of sequential and concurrent edits, alternating
    histories: tuple[int, ...]  # commit counts for the history scenarios
    requests_memory: int  # requests before the second RSS reading
    samples: int  # requests per latency sample in the history scenarios
    papers: int  # accepted papers over 50 editions in the scale scenario


PROFILES = {
    "full": Profile("full", 10, 200, 25, 4, (10, 1_000, 10_000), 10_000, 300, 20_000),
    "quick": Profile("quick", 3, 60, 10, 2, (10, 300, 3_000), 2_000, 100, 5_000),
    "smoke": Profile("smoke", 0.5, 5, 2, 1, (10, 30), 200, 10, 500),
}


@dataclass
class Row:
    scenario: str
    cms: float
    baseline: float
    unit: str
    ratio: float
    goal: str
    met: bool | None
    note: str = ""


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


@contextmanager
def serve(argv: list[str], env: dict[str, str], ready: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        wait_ready(ready)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def cms_env(instance: Path) -> dict[str, str]:
    return {**os.environ, "CMS_INSTANCE_PATH": str(instance), "CMS_RATELIMIT_ENABLED": "false",
            "CMS_DATABASE_URL": f"sqlite:///{instance / 'cms.sqlite3'}", "CMS_GC_EVERY": "0"}  # fmt: skip


@contextmanager
def cms_server(instance: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    argv = [PY, "-m", "cms.cli", "serve", "--port", str(port), "--workers", str(workers)]
    with serve(argv, cms_env(instance), f"http://127.0.0.1:{port}/healthz") as proc:
        yield f"http://127.0.0.1:{port}", proc


@contextmanager
def baseline_server(payloads: Path, workers: int) -> Iterator[str]:
    port = free_port()
    # the settings `cms serve` uses; gunicorn's access log stands for the CMS's own log line
    argv = [PY, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
            "--access-logfile", "-", "--graceful-timeout", "10", "--no-control-socket",
            "--chdir", str(Path(__file__).parent), "baseline:create_app()"]  # fmt: skip
    env = {**os.environ, "BENCH_PAYLOADS": str(payloads)}
    with serve(argv, env, f"http://127.0.0.1:{port}/healthz"):
        yield f"http://127.0.0.1:{port}"


def cms_cli(instance: Path, *args: str) -> str:
    return subprocess.run([PY, "-m", "cms.cli", *args], env=cms_env(instance), check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def token(instance: Path, role: str) -> dict[str, str]:
    secret = cms_cli(instance, "tokens", "create", "--name", "Bench", "--email", "bench@example.org",
                     "--role", role).strip()  # fmt: skip
    return {"Authorization": f"Bearer {secret}"}


# --- load ----------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    if shutil.which("wrk") is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, check=False,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return shutil.which("wrk")


def wrk(url: str, seconds: float, headers: dict[str, str] | None = None) -> dict[str, float]:
    """req/s, p50 and p99 (ms) with wrk: 1 thread, 8 connections (or a Python fallback)."""
    binary = ensure_wrk()
    if binary is None:
        return python_load(url, seconds, headers)
    argv = [binary, "-t1", "-c8", f"-d{max(seconds, 1):g}s", "--latency", url]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error responses under load")
    return {"rps": rps, "p50": _wrk_ms(out, "50%"), "p99": _wrk_ms(out, "99%")}


def _wrk_ms(out: str, pct: str) -> float:
    m = re.search(rf"{re.escape(pct)}\s+([\d.]+)(us|ms|s)\b", out)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def python_load(
    url: str, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, float]:
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        times.append(timed_get(url, headers))
    return {"rps": len(times) / seconds, "p50": pct(times, 50), "p99": pct(times, 99)}


def timed_get(url: str, headers: dict[str, str] | None = None) -> float:
    req = urllib.request.Request(url, headers=headers or {})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 304:
            raise
    return (time.perf_counter() - start) * 1000


def request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def workers_of(master: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(p))
    return out


# --- fixtures --------------------------------------------------------------------------------------


def fresh_instance(base: Path, name: str) -> Path:
    instance = base / name
    cms_cli(instance, "check")  # creates the repository from the seed and the index
    return instance


def build_history(instance: Path, commits: int) -> None:
    """A long history on main with git fast-import (plumbing): one person edited per commit."""
    repo = instance / "content.git"
    head = subprocess.run(["git", f"--git-dir={repo}", "rev-parse", "main"], env=GIT_ENV,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    start = int(time.time()) - commits - 10
    base_yaml = (ROOT / "content_repo/people/valentin-barriere.yaml").read_text()
    chunks = []
    for n in range(commits):
        content = base_yaml.replace("bio: ''", f"bio: Edit number {n}").encode()
        message = (
            f"Update people/valentin-barriere\n\nBench edit {n}\n\nCMS-Action: update\n".encode()
        )
        chunks.append(b"commit refs/heads/main\n")
        chunks.append(b"author Bench <bench@example.org> %d +0000\n" % (start + n))
        chunks.append(b"committer Bench <bench@example.org> %d +0000\n" % (start + n))
        chunks.append(b"data %d\n%s\n" % (len(message), message))
        if n == 0:
            chunks.append(f"from {head}\n".encode())
        chunks.append(b"M 100644 inline people/valentin-barriere.yaml\n")
        chunks.append(b"data %d\n%s\n" % (len(content), content))
    subprocess.run(["git", f"--git-dir={repo}", "fast-import", "--quiet", "--force"], env=GIT_ENV,
                   input=b"".join(chunks), check=True)  # fmt: skip


# --- scenarios -----------------------------------------------------------------------------------


def ratio_row(scenario: str, cms: float, base: float, unit: str, goal: str,
              ok: Callable[[float], bool], note: str = "") -> Row:  # fmt: skip
    r = cms / base if base else float("nan")
    return Row(scenario, round(cms, 3), round(base, 3), unit, round(r, 3), goal, ok(r), note)


def reads(profile: Profile, work: Path) -> list[Row]:
    instance = fresh_instance(work, "reads")
    payloads = work / "payloads"
    payloads.mkdir()
    rows = []
    with cms_server(instance, workers=2) as (url, _):
        for name, path in (
            ("item", WORKSHOP),
            ("list", "/api/v1/references"),
            ("site", "/api/v1/site"),
        ):
            _status, headers, body = request("GET", url + path)
            (payloads / f"{name}.json").write_bytes(
                json.dumps(body, separators=(",", ":")).encode()
            )
            (payloads / f"{name}.etag").write_text(headers["ETag"])
        etag = (payloads / "item.etag").read_text()
        cms_figures = {
            "item": wrk(url + WORKSHOP, profile.seconds),
            "304": wrk(url + WORKSHOP, profile.seconds, {"If-None-Match": etag}),
            "list": wrk(url + "/api/v1/references", profile.seconds),
            "site": wrk(url + "/api/v1/site", profile.seconds),
        }
    with baseline_server(payloads, workers=2) as base:
        base_figures = {
            "item": wrk(base + "/item", profile.seconds),
            "304": wrk(base + "/item", profile.seconds, {"If-None-Match": etag}),
            "list": wrk(base + "/list", profile.seconds),
            "site": wrk(base + "/site", profile.seconds),
        }
    goals = {"item": 0.6, "304": 0.7, "list": 0.5, "site": 0.5}
    labels = {"item": "read one item (GET /workshops/{slug})", "304": "revalidate (If-None-Match -> 304)",
              "list": "list a type (GET /references)", "site": "GET /site"}  # fmt: skip
    for key, goal in goals.items():
        c, b = cms_figures[key], base_figures[key]
        rows.append(ratio_row(labels[key], c["rps"], b["rps"], "req/s", f">= {goal}",
                              lambda r, g=goal: r >= g,
                              f"p50 {c['p50']:.2f} ms, p99 {c['p99']:.2f} ms (bare: {b['p50']:.2f}, {b['p99']:.2f})"))  # fmt: skip
    return rows


def git_plumbing_edit(repo: Path, n: int) -> float:
    """The same one-file change with plain git plumbing, timed: hash-object, mktree, commit-tree, update-ref."""

    def git(*args: str, data: bytes | None = None) -> str:
        return subprocess.run(["git", f"--git-dir={repo}", *args], input=data, env=GIT_ENV,
                              capture_output=True, check=True).stdout.decode().strip()  # fmt: skip

    start = time.perf_counter()
    head = git("rev-parse", "refs/heads/main")
    content = (
        f"name: Valentin Barriere\naffiliation: ''\nrole: organizer\nbio: plumbing {n}\nlinks: []\n"
    )
    blob = git("hash-object", "-w", "--stdin", data=content.encode())
    people = git("ls-tree", f"{head}:people")
    lines = [ln for ln in people.splitlines() if not ln.endswith("\tvalentin-barriere.yaml")]
    lines.append(f"100644 blob {blob}\tvalentin-barriere.yaml")
    sub = git("mktree", data=("\n".join(lines) + "\n").encode())
    root_lines = [ln if not ln.endswith("\tpeople") else f"040000 tree {sub}\tpeople"
                  for ln in git("ls-tree", head).splitlines()]  # fmt: skip
    root = git("mktree", data=("\n".join(root_lines) + "\n").encode())
    commit = git("commit-tree", root, "-p", head, "-m", f"Update people/valentin-barriere {n}")
    git("update-ref", "refs/heads/main", commit, head)
    return (time.perf_counter() - start) * 1000


def edits(profile: Profile, work: Path) -> list[Row]:
    instance = fresh_instance(work, "edits")
    auth = token(instance, "editor")
    cms_ms: list[float] = []
    with cms_server(instance, workers=2) as (url, _):
        _, headers, _ = request("GET", url + PERSON + "?ref=main", headers=auth)
        etag = headers["ETag"]
        for n in range(profile.edits):
            start = time.perf_counter()
            status, headers, _ = request(
                "PATCH", url + PERSON, {"bio": f"edit {n}"}, {**auth, "If-Match": etag}
            )
            cms_ms.append((time.perf_counter() - start) * 1000)
            assert status == 200, status
            etag = headers["ETag"]
    yaml_size = len(
        f"name: Valentin Barriere\naffiliation: ''\nrole: organizer\nbio: edit {profile.edits}\nlinks: []\n"
    )
    before = dir_size(instance / "content.git" / "objects")
    cms_cli(instance, "gc")
    packed = dir_size(instance / "content.git" / "objects")
    plumbing_repo = work / "plumbing.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(instance / "content.git"), str(plumbing_repo)],
                   env=GIT_ENV, check=True)  # fmt: skip
    git_ms = [git_plumbing_edit(plumbing_repo, n) for n in range(profile.edits)]
    rows = [
        ratio_row("one edit (PATCH, sequential), p50", pct(cms_ms, 50), pct(git_ms, 50), "ms", "<= 2x",
                  lambda r: r <= 2, "baseline: git plumbing (hash-object -w, mktree, commit-tree, update-ref) from a script"),
        ratio_row("one edit (PATCH, sequential), p99", pct(cms_ms, 99), pct(git_ms, 99), "ms", "<= 2x",
                  lambda r: r <= 2),
        Row("repository size per edit after cms gc", round(packed / (profile.edits + 9), 1), yaml_size, "bytes",
            round(packed / (profile.edits + 9) / yaml_size, 3), "report", None,
            f"loose before gc: {before} bytes for {profile.edits} edits"),
    ]  # fmt: skip
    return rows


def build_editions(instance: Path, workshops: int, papers_each: int) -> None:
    """Many editions with their accepted papers, one commit per workshop (an import each),
    on main and published, with git fast-import; the files are the CMS's own canonical YAML."""
    from cms.types import TYPES

    def file(type_name: str, body: dict[str, Any]) -> bytes:
        ctype = TYPES[type_name]
        return ctype.file_bytes(ctype.schema.dump(ctype.schema.load(body)))

    repo = instance / "content.git"
    head = subprocess.run(["git", f"--git-dir={repo}", "rev-parse", "main"], env=GIT_ENV,
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    chunks, start = [], int(time.time()) - workshops - 10
    for w in range(workshops):
        slug = f"edition-{w:02d}"
        files = {f"workshops/{slug}.yaml": file("workshops", {
            "title": f"TerraBytes edition {w}", "start": "2025-07-19T09:00:00-07:00",
            "end": "2025-07-19T18:00:00-07:00"})}  # fmt: skip
        for n in range(papers_each):
            files[f"papers/{slug}-paper-{n:04d}.yaml"] = file("papers", {
                "workshop": slug, "title": f"Paper {n} of edition {w}: learning from orbit",
                "authors": [{"name": f"Author {n}", "affiliation": "Somewhere"}],
                "abstract": "We study *satellite* images. " * 8,
                "presentation": ("oral", "spotlight", "poster")[n % 3]})  # fmt: skip
        message = f"Import papers of {slug}\n\nCMS-Action: import\n".encode()
        chunks += [b"commit refs/heads/main\n", b"author Bench <bench@example.org> %d +0000\n" % (start + w),
                   b"committer Bench <bench@example.org> %d +0000\n" % (start + w),
                   b"data %d\n%s\n" % (len(message), message)]  # fmt: skip
        if w == 0:
            chunks.append(f"from {head}\n".encode())
        for path, data in files.items():
            chunks += [f"M 100644 inline {path}\n".encode(), b"data %d\n%s\n" % (len(data), data)]
    chunks.append(b"reset refs/heads/published\nfrom refs/heads/main\n\n")
    subprocess.run(["git", f"--git-dir={repo}", "fast-import", "--quiet", "--force"], env=GIT_ENV,
                   input=b"".join(chunks), check=True)  # fmt: skip


def scale(profile: Profile, work: Path) -> list[Row]:
    """Many papers over many editions against a hundredth of them: the same reads, ratios."""
    workshops, large = 50, profile.papers
    sizes = {"small": max(1, large // 100 // workshops), "large": large // workshops}
    reindex: dict[str, tuple[float, float]] = {}
    for name, each in sizes.items():
        instance = fresh_instance(work, f"scale-{name}")
        build_editions(instance, workshops, each)
        start = time.perf_counter()
        out = cms_cli(instance, "reindex")
        cms_s = float(re.search(r"in ([\d.]+) s", out).group(1))  # type: ignore[union-attr]
        start = time.perf_counter()
        subprocess.run(["git", f"--git-dir={instance / 'content.git'}", "log", "--raw", "--no-renames", "main"],
                       env=GIT_ENV, capture_output=True, check=True)  # fmt: skip
        reindex[name] = (cms_s, time.perf_counter() - start)
    rng = __import__("random").Random(3)
    calls = {
        "a list page (GET /papers?page=N)": lambda size: f"/api/v1/papers?page={rng.randint(1, 5)}",
        "one edition's papers (?workshop=)": lambda size: f"/api/v1/papers?workshop=edition-{rng.randrange(workshops):02d}",
        "GET /site?workshop=": lambda size: f"/api/v1/site?workshop=edition-{rng.randrange(workshops):02d}",
        "one paper": lambda size: f"/api/v1/papers/edition-{rng.randrange(workshops):02d}-paper-{rng.randrange(sizes[size]):04d}",
    }  # fmt: skip
    samples: dict[str, dict[str, list[float]]] = {size: {} for size in sizes}
    rss: dict[str, int] = {}
    with ExitStack() as stack:
        servers = {
            size: stack.enter_context(cms_server(work / f"scale-{size}", workers=2))
            for size in sizes
        }
        for i in range(5 + profile.samples):  # alternating: the machine's drift hits both alike
            for label, make in calls.items():
                for size, (url, _) in servers.items():
                    ms = timed_get(url + make(size))
                    if i >= 5:
                        samples[size].setdefault(label, []).append(ms)
        for size, (_, proc) in servers.items():
            rss[size] = max(rss_kib(pid) for pid in workers_of(proc.pid))
    rows = []
    for label in calls:
        small, big = pct(samples["small"][label], 50), pct(samples["large"][label], 50)
        rows.append(ratio_row(f"{label} p50 at {large} papers", big, small, "ms", "<= 1.5x", lambda r: r <= 1.5,
                              f"baseline: the same calls at {sizes['small'] * workshops} papers, {workshops} editions"))  # fmt: skip
    rows.append(ratio_row(f"RSS per worker at {large} papers", rss["large"], rss["small"], "KiB", "<= 1.2x",
                          lambda r: r <= 1.2, "after the same requests; types over CMS_SNAPSHOT_MAX_ITEMS stay in SQL"))  # fmt: skip
    cms_s, git_s = reindex["large"]
    rows.append(ratio_row(f"cms reindex of {large} papers", cms_s, git_s, "s", "<= 5x", lambda r: r <= 5,
                          f"baseline: git log --raw --no-renames of the same {workshops} commits"))  # fmt: skip
    return rows


def media(profile: Profile, work: Path) -> list[Row]:
    """What an image costs the repository: its growth after gc against the files' own bytes
    (git zlib-compresses blobs, which JPEG bytes resist: about 1x is right)."""
    import random

    import requests
    from PIL import Image

    count = max(3, profile.edits // 5)
    instance = fresh_instance(work, "media")
    auth = token(instance, "editor")
    cms_cli(instance, "gc")
    before = dir_size(instance / "content.git" / "objects")
    sizes, upload_ms = [], []
    rng = random.Random(7)
    with cms_server(instance, workers=2) as (url, _):
        for n in range(count):
            picture = Image.new("RGB", (640, 480), (rng.randrange(256), 90, 160))
            picture.putdata(
                [(x % 256, (x // 640) % 256, rng.randrange(256)) for x in range(640 * 480)]
            )
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=85)
            sizes.append(len(out.getvalue()))
            start = time.perf_counter()
            r = requests.post(url + "/api/v1/media", headers=auth, timeout=30,
                              files={"file": (f"photo-{n}.jpg", out.getvalue())}, data={"alt": f"Photo {n}"})  # fmt: skip
            upload_ms.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 201, r.text
    cms_cli(instance, "gc")
    grown = dir_size(instance / "content.git" / "objects") - before
    mean = sum(sizes) / count
    return [
        Row("repository growth per image (640x480 JPEG) after cms gc", round(grown / count), round(mean),
            "bytes", round(grown / count / mean, 3), "report", None,
            f"{count} uploads, one commit each (file and sidecar); upload p50 {pct(upload_ms, 50):.1f} ms"),
    ]  # fmt: skip


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


EditArgs = tuple[str, str, str, dict[str, str], int, str]


def _edit_client(args: EditArgs) -> tuple[list[str], list[int]]:
    """One client process: PATCH one field of an item n times, each time from the ETag its
    previous write returned (as If-Match, or as X-Merge-Base); the commits acknowledged, the
    refusals."""
    url, path, field, auth, n, precondition = args
    acked: list[str] = []
    errors: list[int] = []
    _, headers, _ = request("GET", f"{url}{path}?ref=main", headers=auth)
    etag = headers["ETag"]
    for i in range(n):
        status, headers, _ = request("PATCH", f"{url}{path}", {field: f"{field} {i}"},
                                     {**auth, precondition: etag})  # fmt: skip
        if status != 200:
            errors.append(status)
            break
        etag = headers["ETag"]
        acked.append(headers["X-Content-Revision"])
    return acked, errors


def _alternating_rounds(
    profile: Profile, pool: Any, one: EditArgs, many: list[EditArgs]
) -> tuple[float, float, list[str], list[int], dict[str, int]]:
    """Rounds of one client alone, then the clients together, on one server: (sequential
    rate, concurrent rate, commits acknowledged, refusals, counts). Alternating the two
    (rather than measuring the baseline minutes earlier) keeps a shared machine's drift in
    speed out of the ratio."""
    acked: list[str] = []
    errors: list[int] = []
    times = {"sequential": 0.0, "concurrent": 0.0}
    counts = {"sequential": 0, "concurrent": 0}
    _edit_client((*one[:4], 5, one[5]))  # warm up every worker's first write
    for _ in range(profile.rounds):
        start = time.perf_counter()
        alone = _edit_client(one)
        times["sequential"] += time.perf_counter() - start
        start = time.perf_counter()
        results = pool.map(_edit_client, many)
        times["concurrent"] += time.perf_counter() - start
        for a, e in [alone, *results]:
            acked += a
            errors += e
        counts["sequential"] += len(alone[0])
        counts["concurrent"] += sum(len(a) for a, _ in results)
    sequential = counts["sequential"] / times["sequential"]
    return sequential, counts["concurrent"] / times["concurrent"], acked, errors, counts


def _lost(instance: Path, acked: list[str]) -> int:
    reachable = set(subprocess.run(["git", f"--git-dir={instance / 'content.git'}", "rev-list", "main"],
                                   env=GIT_ENV, capture_output=True, text=True, check=True).stdout.split())  # fmt: skip
    return len([c for c in acked if c not in reachable])


def concurrent_edits(profile: Profile, work: Path) -> list[Row]:
    """8 clients on 8 items against 4 workers, and one client alone, in alternating rounds;
    then 8 clients on 8 fields of one item with X-Merge-Base, against one client's merges."""
    # the clients are processes, not threads: one Python process would be the bottleneck
    from multiprocessing import get_context

    instance = fresh_instance(work, "concurrent")
    auth = token(instance, "editor")
    rows = []
    with cms_server(instance, workers=4) as (url, _), get_context("fork").Pool(8) as pool:
        paths = []
        for i in range(9):
            _status, _, body = request(
                "POST", url + "/api/v1/people", {"name": f"Writer {i}"}, auth
            )
            paths.append(f"/api/v1/people/{body['slug']}")
        per_client = profile.concurrent
        sequential, rate, acked, errors, counts = _alternating_rounds(
            profile, pool, (url, paths[8], "bio", auth, 8 * per_client // 2, "If-Match"),
            [(url, path, "bio", auth, per_client, "If-Match") for path in paths[:8]],
        )  # fmt: skip
        lost = _lost(instance, acked)
        rows.append(ratio_row(
            "concurrent edits (8 client processes, 4 workers, distinct items)", rate,
            sequential, "commits/s", ">= 2x and 0 lost",
            lambda r: r >= 2 and lost == 0 and not errors,
            f"{counts['concurrent']} acknowledged ({counts['sequential']} sequential), "
            f"{lost} lost, {len(errors)} refused; baseline: one client's sequential "
            f"edits on the same server, in {profile.rounds} rounds alternating with "
            "the concurrent ones"))  # fmt: skip
        workshop = "/api/v1/workshops/terrabytes-icml25"
        fields = ["event", "location", "abstract", "introduction", "motivation", "initiative",
                  "invited_talks", "website_note"]  # fmt: skip
        sequential, rate, acked, errors, counts = _alternating_rounds(
            profile, pool, (url, workshop, "title", auth, 8 * per_client // 2, "X-Merge-Base"),
            [(url, workshop, f, auth, per_client, "X-Merge-Base") for f in fields],
        )  # fmt: skip
        lost = _lost(instance, acked)
        conflicts = errors.count(409)
        rows.append(ratio_row(
            "merged edits (8 client processes, 4 workers, 8 fields of one item, X-Merge-Base)",
            rate, sequential, "commits/s", ">= 1x, 0 lost, 0 conflicts",
            lambda r: r >= 1 and lost == 0 and not errors,
            f"{counts['concurrent']} acknowledged ({counts['sequential']} sequential), "
            f"{lost} lost, {conflicts} conflicts, {len(errors)} refused; baseline: one "
            "client's sequential merges of another field of the same item, alternating"))  # fmt: skip
    return rows


def histories(profile: Profile, work: Path) -> list[Row]:
    reindex: dict[int, tuple[float, float, float]] = {}
    for commits in profile.histories:
        instance = fresh_instance(work, f"history-{commits}")
        build_history(instance, commits)
        start = time.perf_counter()
        out = cms_cli(instance, "reindex")
        command_s = time.perf_counter() - start
        cms_s = float(re.search(r"in ([\d.]+) s", out).group(1))  # type: ignore[union-attr]
        start = time.perf_counter()
        subprocess.run(["git", f"--git-dir={instance / 'content.git'}", "log", "--raw", "--no-renames", "main"],
                       env=GIT_ENV, capture_output=True, check=True)  # fmt: skip
        reindex[commits] = (cms_s, time.perf_counter() - start, command_s)
    # every history size served at once, and sampled in turn: the machine's drift in speed
    # hits all of them alike
    with ExitStack() as stack:
        calls: dict[int, dict[str, tuple[str, dict[str, str]]]] = {}
        for commits in profile.histories:
            instance = work / f"history-{commits}"
            auth = token(instance, "auditor")
            url, _ = stack.enter_context(cms_server(instance, workers=2))
            middle = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - commits / 2 - 10)
            )
            calls[commits] = {
                "item history": (f"{url}{PERSON}/history", auth),
                "?at= time read": (f"{url}{PERSON}?ref=main&at={middle}", auth),
                "/history": (f"{url}/api/v1/history", auth),
            }
        samples: dict[int, dict[str, list[float]]] = {n: {} for n in profile.histories}
        for name in ("item history", "?at= time read", "/history"):
            for i in range(5 + profile.samples):
                for commits in profile.histories:
                    call, auth = calls[commits][name]
                    ms = timed_get(call, auth)
                    if i >= 5:  # the first few warm each worker up
                        samples[commits].setdefault(name, []).append(ms)
        figures = {n: {name: pct(v, 50) for name, v in by.items()} for n, by in samples.items()}
    small, large = profile.histories[0], profile.histories[-1]
    rows = []
    for name in ("item history", "?at= time read", "/history"):
        detail = ", ".join(f"{n}: {figures[n][name]:.2f} ms" for n in profile.histories)
        rows.append(ratio_row(f"{name} p50 at {large} commits", figures[large][name], figures[small][name], "ms",
                              "<= 1.5x", lambda r: r <= 1.5, f"baseline: the same call at {small} commits ({detail})"))  # fmt: skip
    cms_s, git_s, command_s = reindex[large]
    rows.append(ratio_row(f"cms reindex of {large} commits", cms_s, git_s, "s", "<= 5x", lambda r: r <= 5,
                          f"baseline: git log --raw --no-renames over the same history; the rebuild as "
                          f"cms reindex reports it; the whole command with Python start-up: {command_s:.2f} s"))  # fmt: skip
    return rows


def memory(profile: Profile, work: Path) -> list[Row]:
    instance = fresh_instance(work, "memory")
    auth = token(instance, "editor")
    with cms_server(instance, workers=2) as (url, proc):
        paths = [
            WORKSHOP,
            "/api/v1/references",
            "/api/v1/site",
            "/api/v1/site?render=html",
            PERSON + "/history",
        ]
        for i in range(100):
            timed_get(url + paths[i % len(paths)], auth)
        early = {pid: rss_kib(pid) for pid in workers_of(proc.pid)}
        for i in range(profile.requests_memory):
            timed_get(url + paths[i % len(paths)], auth)
        late = {pid: rss_kib(pid) for pid in workers_of(proc.pid)}
    worst = max(late[pid] / early[pid] for pid in early if pid in late)
    pid = max(early, key=lambda p: late.get(p, 0) / early[p])
    return [Row(f"memory: RSS per worker after {profile.requests_memory} requests", late[pid], early[pid], "KiB",
                round(worst, 3), "<= 1.2x", worst <= 1.2, "baseline: the same worker after 100 requests")]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--smoke", action="store_true", help="seconds: only proves it runs")
    parser.add_argument("--output", type=Path, help="write the table as JSON here")
    parser.add_argument(
        "--only",
        default="reads,edits,histories,memory,media,scale",
        help="comma-separated groups to run (edits includes the concurrent edits)",
    )
    args = parser.parse_args()
    groups = set(args.only.split(","))
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="cms-bench-") as tmp:
        work = Path(tmp)
        rows: list[Row] = []
        if "reads" in groups:
            rows += reads(profile, work)
        if "edits" in groups:
            rows += edits(profile, work)
            rows += concurrent_edits(profile, work)
        if "histories" in groups:
            rows += histories(profile, work)
        if "memory" in groups:
            rows += memory(profile, work)
        if "media" in groups:
            rows += media(profile, work)
        if "scale" in groups:
            rows += scale(profile, work)
    machine = {
        "cores": os.cpu_count(),
        "load_generator": "wrk -t1 -c8 (1 thread)" if shutil.which("wrk") else "Python (1 thread)",
        "server": "gunicorn sync workers, 2 (4 for concurrent edits), same cores as the load generator",
        "profile": profile.name,
        "seconds": round(time.time() - started, 1),
    }
    print_table(rows, machine)
    if args.output:
        args.output.write_text(
            json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2)
        )
    return 0


def print_table(rows: list[Row], machine: dict[str, Any]) -> None:
    print(f"\n{machine['cores']} cores shared by both sides; load: {machine['load_generator']}; "
          f"server: {machine['server']}; profile {machine['profile']}, {machine['seconds']} s\n")  # fmt: skip
    print("| scenario | CMS | baseline | unit | ratio | goal | met | notes |")
    print("|---|---:|---:|---|---:|---|---|---|")
    for r in rows:
        met = "report" if r.met is None else ("yes" if r.met else "NO")
        print(
            f"| {r.scenario} | {r.cms:g} | {r.baseline:g} | {r.unit} | {r.ratio:g} | {r.goal} | {met} | {r.note} |"
        )


if __name__ == "__main__":
    sys.exit(main())
