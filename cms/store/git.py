"""The git content store: a bare repository read and written without a work tree or index file.

Objects are read in-process with GitPython's object database (no ``git cat-file`` process per
request) and written as loose objects by a few lines of our own, as git writes them; refs are
read from the ref files and moved by a compare-and-swap that follows git's own lock-file
protocol, so the write path spawns no process either. One streamed `git log` serves the
catch-up of many commits at once; `git fsck`, `gc` and `http-backend` run as git. Its twin in
memory, for tests, is store/memory.py.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from git.db import GitDB
from git.objects.fun import tree_entries_from_data, tree_to_stream
from gitdb.exc import BadObject

log = logging.getLogger(__name__)
_tmp_names = itertools.count()

ZERO = "0" * 40
HEX40 = re.compile(r"^[0-9a-f]{40}$")
BLOB_MODE = 0o100644
TREE_MODE = 0o040000

# git must never read a user's or the system's config: hooks, signing or autocrlf there
# would change what the CMS writes.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
}

REPO_CONFIG = {
    "core.fsync": "committed,reference",
    "core.fsyncMethod": "fsync",
    "core.logAllRefUpdates": "always",
    "receive.denyNonFastForwards": "true",
    "http.receivepack": "false",
}


class StoreError(Exception):
    """The repository could not be read or written."""


class RefMoved(StoreError):
    """update_ref_if_equals found the ref elsewhere than expected."""


class ObjectMissing(StoreError):
    """An object the caller named is not in the repository."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def signature(self, when: int) -> str:
        return f"{_clean_ident(self.name)} <{_clean_ident(self.email)}> {when} +0000"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: int
    committer_name: str
    committer_email: str
    committer_time: int
    message: str
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass(frozen=True)
class TagInfo:
    sha: str
    target: str
    name: str
    tagger_name: str
    tagger_email: str
    time: int
    message: str


TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,99}$")
RESERVED_NAMES = frozenset({"HEAD", "FETCH_HEAD", "ORIG_HEAD", "MERGE_HEAD", "main", "published"})


def safe_tag_name(name: str) -> bool:
    """A release name: safe as a tag, never mistaken for a commit id or a git keyword."""
    return bool(
        TAG_NAME.match(name)
        and name not in RESERVED_NAMES
        and ".." not in name
        and not name.endswith((".", ".lock"))
        and not (len(name) >= 7 and re.fullmatch(r"[0-9a-fA-F]+", name))
    )


def _clean_ident(value: str) -> str:
    # A name or email can never break the commit header it is written into.
    return re.sub(r"[<>\x00-\x1f\x7f]", "", value).strip() or "unknown"


def git_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def run_git(git_dir: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run git on the repository with a fixed argument list (never a client string)."""
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        input=input,
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise StoreError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def stream_git(git_dir: Path, separator: bytes, *args: str) -> Iterator[bytes]:
    """Run git and yield its output split at separator while it is still writing, so that
    parsing one part overlaps git producing the next."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", *args],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=git_env(),
        )
        assert proc.stdout is not None
        try:
            pending = b""
            while block := os.read(proc.stdout.fileno(), 1 << 16):
                *done, pending = (pending + block).split(separator)
                yield from done
            yield pending
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise StoreError(f"git {args[0]} failed: {message}")


class GitStore:
    """One bare repository. Cheap to construct: it holds a path, nothing open."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    # --- the repository ---------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.path / "objects").is_dir() and (self.path / "HEAD").is_file()

    def init(self) -> None:
        """Create the bare repository (idempotent) with durable, user-independent settings."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(self.path)],
            check=True,
            env=git_env(),
            capture_output=True,
        )
        for key, value in REPO_CONFIG.items():
            run_git(self.path, "config", key, value)

    def gc(self, auto: bool = False) -> None:
        """git's own housekeeping: pack objects and refs. Safe while the CMS runs: git locks
        what it rewrites, and loose objects younger than two weeks are never pruned."""
        run_git(self.path, "gc", "--quiet", *(["--auto"] if auto else []))

    def size(self) -> int:
        """Bytes the object database takes on disk."""
        return sum(p.stat().st_size for p in (self.path / "objects").rglob("*") if p.is_file())

    # --- refs -------------------------------------------------------------------------------

    def read_ref(self, ref: str) -> str | None:
        """The commit a full ref name points to, read from the ref files (no process).

        On every read request: plain os calls, no pathlib, about ten microseconds.
        """
        try:
            fd = os.open(os.path.join(self.path, ref), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            sha = self._packed_refs().get(ref, "")
        else:
            try:
                sha = os.read(fd, 128).decode("ascii", "replace").strip()
            except IsADirectoryError:
                sha = ""
            finally:
                os.close(fd)
        return sha if HEX40.match(sha) else None

    def list_refs(self, prefix: str) -> dict[str, str]:
        refs = {name: sha for name, sha in self._packed_refs().items() if name.startswith(prefix)}
        base = self.path / prefix
        if base.is_dir():
            for p in base.rglob("*"):
                if p.is_file() and not p.name.endswith(".lock"):
                    sha = p.read_text().strip()
                    if HEX40.match(sha):
                        refs[str(p.relative_to(self.path))] = sha
        return refs

    def _packed_refs(self) -> dict[str, str]:
        refs: dict[str, str] = {}
        try:
            text = (self.path / "packed-refs").read_text()
        except FileNotFoundError:
            return refs
        for line in text.splitlines():
            if line and line[0] not in "#^":
                sha, _, name = line.partition(" ")
                refs[name] = sha
        return refs

    def update_ref_if_equals(
        self, ref: str, new: str, old: str | None, reason: str, who: Identity | None = None
    ) -> None:
        """Move ref to new only if it still points to old (None: only if it does not exist).

        git's own protocol, in-process: take `<ref>.lock` (O_EXCL, so a git command run by
        hand and the CMS exclude each other), compare, write and fsync, log, rename.
        """
        assert HEX40.match(new) and (old is None or HEX40.match(old))
        path = self.path / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + ".lock")
        fd = self._take_ref_lock(lock)
        try:
            if self.read_ref(ref) != old:
                raise RefMoved(f"{ref} moved")
            os.write(fd, f"{new}\n".encode())
            os.fsync(fd)
            os.close(fd)
            fd = -1
            who = who or Identity("TerraBytes CMS", "cms@localhost")
            self._log_ref(ref, old, new, reason, who)
            if self._head_target() == ref:  # as git: HEAD's reflog follows its branch
                self._log_ref("HEAD", old, new, reason, who)
            os.replace(lock, path)
            _fsync_dir(path.parent)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise

    def _take_ref_lock(self, lock: Path, patience: float = 1.0) -> int:
        """Create `<ref>.lock`. One left by a killed process is removed after `patience`:
        the caller holds the CMS's write lock, and git run by hand holds it for milliseconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if time.monotonic() >= deadline:
                    log.warning("removing stale %s", lock)
                    lock.unlink(missing_ok=True)
                    deadline = time.monotonic() + patience
                else:
                    time.sleep(0.01)

    def _head_target(self) -> str | None:
        try:
            head = (self.path / "HEAD").read_text()
        except OSError:
            return None
        return head.removeprefix("ref: ").strip() if head.startswith("ref: ") else None

    def _log_ref(self, ref: str, old: str | None, new: str, reason: str, who: Identity) -> None:
        """Append to the ref's reflog, as git does (core.logAllRefUpdates)."""
        logfile = self.path / "logs" / ref
        logfile.parent.mkdir(parents=True, exist_ok=True)
        message = " ".join(reason.split())[:200]
        line = f"{old or ZERO} {new} {who.signature(int(time.time()))}\t{message}\n"
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def first_parent_log(self, head: str, stop: str | None) -> list[LogEntry] | None:
        """Commits on head's first-parent line after stop, oldest first, with the files each
        changed against its first parent: one `git log` for the whole range.

        None when stop is not on that line (the ref was rewritten). Only full object ids read
        from the ref files are passed to git, never a client string.
        """
        assert HEX40.match(head) and (stop is None or HEX40.match(stop))
        if head == stop:
            return []
        records = stream_git(
            self.path, b"\x01", "log", "--first-parent", "--reverse", "--raw", "--no-renames",
            "--no-abbrev", "-z", f"--format={LOG_FORMAT}",
            head, *([f"^{stop}"] if stop else []), "--",
        )  # fmt: skip
        next(records, None)  # what comes before the first separator: nothing
        entries = [_parse_log_entry(chunk) for chunk in records]
        if stop is not None and (not entries or entries[0].commit.parents[:1] != (stop,)):
            return None
        return entries

    # --- objects ----------------------------------------------------------------------------

    @contextmanager
    def objects(self) -> Iterator[ObjectAccess]:
        """Object access for one unit of work; nothing stays open after it."""
        odb = GitDB(str(self.path / "objects"))
        try:
            yield GitObjects(odb, self.path / "objects")
        finally:
            del odb


class ObjectAccess:
    """Reads and writes git objects: the object format lives here, once; where the objects
    are kept (a repository's object database, or memory for the test twin) is up to the
    subclass, which provides `_load` and `_store`."""

    def __init__(self) -> None:
        self._trees: dict[str, dict[str, tuple[int, str]]] = {}  # objects never change

    def _load(self, sha: str) -> tuple[str, bytes]:
        """(kind, content) of one object; ObjectMissing when there is none."""
        raise NotImplementedError

    def _store(self, kind: str, data: bytes) -> str:
        """Keep one object (durably, before a ref may point at it); its id."""
        raise NotImplementedError

    def has(self, sha: str) -> bool:
        try:
            self._load(sha)
        except ObjectMissing:
            return False
        return True

    def _read(self, sha: str, kind: str) -> bytes:
        found, data = self._load(sha)
        if found != kind:
            raise ObjectMissing(f"{sha} is a {found}, not a {kind}")
        return data

    def read_blob(self, sha: str) -> bytes:
        return self._read(sha, "blob")

    def read_tree(self, sha: str) -> dict[str, tuple[int, str]]:
        """Entries of one tree: name -> (mode, sha). The caller may change the dict it gets."""
        entries = self._trees.get(sha)
        if entries is None:
            entries = self._trees[sha] = {
                name: (mode, binsha.hex())
                for binsha, mode, name in tree_entries_from_data(self._read(sha, "tree"))
            }
        return dict(entries)

    def peel_to_commit(self, sha: str) -> str:
        """The commit an annotated tag (or a chain of them) points to."""
        for _ in range(10):
            kind, data = self._load(sha)
            if kind == "commit":
                return sha
            if kind != "tag":
                break
            sha = data.split(b"\n", 1)[0].removeprefix(b"object ").decode()
        raise ObjectMissing(f"{sha} does not lead to a commit")

    def read_commit(self, sha: str) -> CommitInfo:
        return parse_commit(sha, self._read(sha, "commit"))

    def files(self, tree: str) -> dict[str, str]:
        """Every file of a two-level content tree: 'folder/name' -> blob id."""
        out = {}
        for folder, (mode, sub) in self.read_tree(tree).items():
            if mode == TREE_MODE:
                for name, (fmode, blob) in self.read_tree(sub).items():
                    if fmode != TREE_MODE:
                        out[f"{folder}/{name}"] = blob
        return out

    def blob_at(self, tree: str, path: str) -> str | None:
        """The blob id at 'folder/name' in a tree, or None."""
        folder, _, name = path.partition("/")
        entry = self.read_tree(tree).get(folder)
        if entry is None or entry[0] != TREE_MODE:
            return None
        found = self.read_tree(entry[1]).get(name)
        return found[1] if found and found[0] != TREE_MODE else None

    def write_blob(self, data: bytes) -> str:
        return self._store("blob", data)

    def write_tree(self, entries: Mapping[str, tuple[int, str]]) -> str:
        def key(item: tuple[str, tuple[int, str]]) -> bytes:
            name, (mode, _) = item
            return (name + "/" if mode == TREE_MODE else name).encode()

        rows = [
            (bytes.fromhex(sha), mode, name)
            for name, (mode, sha) in sorted(entries.items(), key=key)
        ]
        buf = BytesIO()
        tree_to_stream(rows, buf.write)
        return self._store("tree", buf.getvalue())

    def tree_with_changes(self, root: str | None, changes: Mapping[str, str | None]) -> str:
        """A new root tree: root with each 'folder/name' set to a blob id, or removed (None)."""
        top = self.read_tree(root) if root else {}
        by_folder: dict[str, dict[str, str | None]] = {}
        for path, blob in changes.items():
            folder, _, name = path.partition("/")
            by_folder.setdefault(folder, {})[name] = blob
        for folder, files in by_folder.items():
            entry = top.get(folder)
            sub = self.read_tree(entry[1]) if entry and entry[0] == TREE_MODE else {}
            for name, blob in files.items():
                if blob is None:
                    sub.pop(name, None)
                else:
                    sub[name] = (BLOB_MODE, blob)
            if sub:
                top[folder] = (TREE_MODE, self.write_tree(sub))
            else:
                top.pop(folder, None)
        return self.write_tree(top)

    def write_tag(self, target: str, name: str, tagger: Identity, message: str, when: int) -> str:
        """An annotated tag object pointing at a commit."""
        body = (
            f"object {target}\ntype commit\ntag {name}\ntagger {tagger.signature(when)}\n\n"
            + message.rstrip("\n")
            + "\n"
        )
        return self._store("tag", body.encode("utf-8"))

    def read_tag(self, sha: str) -> TagInfo | None:
        """An annotated tag's fields, or None when sha is not a tag object."""
        kind, data = self._load(sha)
        if kind != "tag":
            return None
        header, _, message = data.decode("utf-8", "replace").partition("\n\n")
        fields = dict(line.partition(" ")[::2] for line in header.split("\n"))
        m = _IDENT.match(fields.get("tagger", ""))
        return TagInfo(
            sha=sha,
            target=fields.get("object", ""),
            name=fields.get("tag", ""),
            tagger_name=m.group(1) if m else "",
            tagger_email=m.group(2) if m else "",
            time=int(m.group(3)) if m else 0,
            message=message.rstrip("\n"),
        )

    def write_commit(
        self,
        tree: str,
        parents: list[str],
        author: Identity,
        committer: Identity,
        message: str,
        when: int,
    ) -> str:
        lines = [f"tree {tree}"]
        lines += [f"parent {p}" for p in parents]
        lines.append(f"author {author.signature(when)}")
        lines.append(f"committer {committer.signature(when)}")
        body = "\n".join(lines) + "\n\n" + message.rstrip("\n") + "\n"
        return self._store("commit", body.encode("utf-8"))


class GitObjects(ObjectAccess):
    """Objects in a repository's object database: read with GitPython's (loose and packed
    objects, no process), written as loose objects the way git writes them."""

    def __init__(self, odb: GitDB, objects_dir: Path) -> None:
        super().__init__()
        self._odb = odb
        self._dir = objects_dir

    def _load(self, sha: str) -> tuple[str, bytes]:
        try:
            binsha = bytes.fromhex(sha)
            try:
                stream = self._odb.stream(binsha)
            except BadObject:
                # `git gc` may have packed it (and removed the loose copy) since we listed packs
                self._odb.update_cache(force=True)
                stream = self._odb.stream(binsha)
        except (BadObject, ValueError) as exc:
            raise ObjectMissing(sha) from exc
        return stream.type.decode(), stream.read()

    def has(self, sha: str) -> bool:
        try:
            return bool(self._odb.has_object(bytes.fromhex(sha)))
        except ValueError:
            return False

    def _store(self, kind: str, data: bytes) -> str:
        """Write one loose object as git does (zlib of "<kind> <size>\\0<data>", written to a
        temporary file in its fan-out folder, fsynced, renamed into place, folder fsynced)."""
        sha, raw = object_id(kind, data)
        folder = self._dir / sha[:2]
        path = folder / sha[2:]
        if path.exists():  # written before, perhaps by git with other fsync settings
            _fsync_file(path)
            _fsync_dir(folder)
            return sha
        try:
            folder.mkdir()
            _fsync_dir(self._dir)
        except FileExistsError:
            pass
        # git's own prefix: `git prune` removes what a killed writer leaves behind
        tmp = folder / f"tmp_obj_cms_{os.getpid()}_{next(_tmp_names)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(zlib.compress(raw))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        return sha


def object_id(kind: str, data: bytes) -> tuple[str, bytes]:
    """git's id of an object, and the bytes it hashes ("<kind> <size>\\0<data>")."""
    raw = b"%s %d\0" % (kind.encode(), len(data)) + data
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest(), raw


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# \x01 starts a commit; NUL separates hash, parents, author, committer, times and message
LOG_FORMAT = "%x01%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x00"


@dataclass(frozen=True)
class LogEntry:
    """One commit and the files it changed: (path, old blob or None, new blob or None)."""

    commit: CommitInfo
    changes: list[tuple[str, str | None, str | None]]


def _parse_log_entry(chunk: bytes) -> LogEntry:
    fields = chunk.split(b"\x00", 9)
    sha, parents, an, ae, at, cn, ce, ct, body = (f.decode("utf-8", "replace") for f in fields[:9])
    raw = fields[9].lstrip(b"\x00\n").split(b"\x00") if len(fields) > 9 else []
    changes: list[tuple[str, str | None, str | None]] = []
    for meta, path in zip(raw[::2], raw[1::2], strict=False):
        parts = meta.decode().split()
        if len(parts) < 5:
            continue
        old, new = parts[2], parts[3]
        changes.append(
            (
                path.decode("utf-8", "replace"),
                None if old == ZERO else old,
                None if new == ZERO else new,
            )
        )
    commit = CommitInfo(
        sha=sha,
        tree="",
        parents=tuple(parents.split()),
        author_name=an,
        author_email=ae,
        author_time=int(at or 0),
        committer_name=cn,
        committer_email=ce,
        committer_time=int(ct or 0),
        message=body,
    )
    return LogEntry(commit, changes)


_IDENT = re.compile(r"^(.*) <(.*)> (\d+) ([+-]\d{4})$")
TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*): (.*)$")


def parse_commit(sha: str, raw: bytes) -> CommitInfo:
    text = raw.decode("utf-8", errors="replace")
    header, _, message = text.partition("\n\n")
    tree = ""
    parents: list[str] = []
    idents: dict[str, tuple[str, str, int]] = {}
    for line in header.split("\n"):
        key, _, value = line.partition(" ")
        if key == "tree":
            tree = value
        elif key == "parent":
            parents.append(value)
        elif key in ("author", "committer"):
            m = _IDENT.match(value)
            idents[key] = (m.group(1), m.group(2), int(m.group(3))) if m else (value, "", 0)
    author = idents.get("author", ("", "", 0))
    committer = idents.get("committer", author)
    paragraphs = message.rstrip("\n").split("\n\n")
    trailers: dict[str, str] = {}
    if len(paragraphs) > 1:
        lines = paragraphs[-1].split("\n")
        matches = [TRAILER.match(line) for line in lines]
        if all(matches):
            trailers = {m.group(1): m.group(2) for m in matches if m}
    return CommitInfo(
        sha=sha,
        tree=tree,
        parents=tuple(parents),
        author_name=author[0],
        author_email=author[1],
        author_time=author[2],
        committer_name=committer[0],
        committer_email=committer[1],
        committer_time=committer[2],
        message=message,
        trailers=trailers,
    )
