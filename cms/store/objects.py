"""git's object format, once: ids, blobs, trees, commits and tags, read and written as values.

`ObjectAccess` holds the format; where objects are kept is up to a subclass: `GitObjects` (a
repository's object database, below) or `MemoryObjects` (the test twin, store/memory.py).
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from git.db import GitDB
from gitdb.exc import BadObject

from cms.store.errors import ObjectMissing
from cms.store.process import run_git

ZERO = "0" * 40
HEX40 = re.compile(r"^[0-9a-f]{40}$")
BLOB_MODE = 0o100644
TREE_MODE = 0o040000

_tmp_names = itertools.count()
_IDENT = re.compile(r"^(.*) <(.*)> (\d+) ([+-]\d{4})$")


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def signature(self, when: int) -> str:
        return f"{_clean_ident(self.name)} <{_clean_ident(self.email)}> {when} +0000"


def _clean_ident(value: str) -> str:
    # A name or email can never break the commit header it is written into.
    return re.sub(r"[<>\x00-\x1f\x7f]", "", value).strip() or "unknown"


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


@dataclass(frozen=True)
class TagInfo:
    sha: str
    target: str
    name: str
    tagger_name: str
    tagger_email: str
    time: int
    message: str


def object_id(kind: str, data: bytes) -> tuple[str, bytes]:
    """git's id of an object, and the bytes it hashes ("<kind> <size>\\0<data>")."""
    raw = b"%s %d\0" % (kind.encode(), len(data)) + data
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest(), raw


def parse_tree(data: bytes) -> dict[str, tuple[int, str]]:
    """A tree object's entries: name -> (mode, id). Each is "<octal mode> <name>\\0<20 bytes>"."""
    entries: dict[str, tuple[int, str]] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        entries[name] = (int(data[pos:space], 8), data[nul + 1 : nul + 21].hex())
        pos = nul + 21
    return entries


def format_tree(entries: Mapping[str, tuple[int, str]]) -> bytes:
    """A tree object's bytes, entries in git's order (a folder sorts as its name plus '/')."""

    def key(item: tuple[str, tuple[int, str]]) -> bytes:
        name, (mode, _) = item
        return (name + "/" if mode == TREE_MODE else name).encode("utf-8", "surrogateescape")

    return b"".join(
        b"%o %s\0%s" % (mode, name.encode("utf-8", "surrogateescape"), bytes.fromhex(sha))
        for name, (mode, sha) in sorted(entries.items(), key=key)
    )


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
    )


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

    @contextmanager
    def together(self) -> Iterator[None]:
        """Objects written in the block become durable together when it ends (one flush for
        a chain of commits, as git's core.fsyncMethod=batch), instead of one by one. They are
        readable here meanwhile; no ref may point at them before the block has ended."""
        yield

    def _read(self, sha: str, kind: str) -> bytes:
        found, data = self._load(sha)
        if found != kind:
            raise ObjectMissing(f"{sha} is a {found}, not a {kind}")
        return data

    def read_blob(self, sha: str) -> bytes:
        return self._read(sha, "blob")

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """Many blobs at once (a catch-up of thousands of items): id -> content."""
        return {sha: self.read_blob(sha) for sha in shas}

    def read_tree(self, sha: str) -> dict[str, tuple[int, str]]:
        """Entries of one tree: name -> (mode, sha). The caller may change the dict it gets."""
        entries = self._trees.get(sha)
        if entries is None:
            entries = self._trees[sha] = parse_tree(self._read(sha, "tree"))
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
        return self._store("tree", format_tree(entries))

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
    """Objects in a repository's object database: read with gitdb (loose and packed objects,
    no process), written as loose objects the way git writes them."""

    def __init__(self, odb: GitDB, objects_dir: Path) -> None:
        super().__init__()
        self._odb = odb
        self._dir = objects_dir
        # inside together(): objects written but not yet durable, and where they go
        self._pending: dict[str, tuple[str, bytes]] | None = None
        self._moves: list[tuple[Path, Path]] = []

    @contextmanager
    def together(self) -> Iterator[None]:
        if self._pending is not None:  # already inside one: the outer block flushes
            yield
            return
        self._pending, self._moves = {}, []
        try:
            yield
            self._flush()
        finally:
            for tmp, _ in self._moves:
                tmp.unlink(missing_ok=True)
            self._pending, self._moves = None, []

    def _flush(self) -> None:
        """Make the block's objects durable: their bytes, then their names."""
        if not self._moves:
            return
        if not sync_filesystem(self._dir):
            for tmp, _ in self._moves:
                fsync_file(tmp)
        folders = set()
        for tmp, path in self._moves:
            os.replace(tmp, path)
            folders.add(path.parent)
        self._moves = []
        if not sync_filesystem(self._dir):
            for folder in folders:
                fsync_dir(folder)

    def _load(self, sha: str) -> tuple[str, bytes]:
        if self._pending and sha in self._pending:
            return self._pending[sha]
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

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """One `git cat-file --batch` for all of them: git resolves packed deltas in C, where
        gitdb takes milliseconds a blob."""
        wanted = list(dict.fromkeys(shas))
        if len(wanted) < 64:
            return super().read_blobs(wanted)
        out = run_git(
            self._dir.parent, "cat-file", "--batch", input="\n".join(wanted).encode() + b"\n"
        )
        found, at = {}, 0
        for sha in wanted:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise ObjectMissing(f"{sha}: {out[at:end].decode(errors='replace')}")
            size = int(header[2])
            found[sha] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1
        return found

    def _store(self, kind: str, data: bytes) -> str:
        """Write one loose object as git does (zlib of "<kind> <size>\\0<data>", written to a
        temporary file in its fan-out folder, fsynced, renamed into place, folder fsynced)."""
        sha, raw = object_id(kind, data)
        folder = self._dir / sha[:2]
        path = folder / sha[2:]
        if self._pending is not None and sha in self._pending:
            return sha
        if path.exists():  # written before, perhaps by git with other fsync settings
            # freshened as git freshens it: a `git gc --auto` running now must not prune an
            # old unreachable object that the commit being made is about to reference
            os.utime(path)
            fsync_file(path)
            fsync_dir(folder)
            return sha
        try:
            folder.mkdir()
            fsync_dir(self._dir)
        except FileExistsError:
            pass
        # git's own prefix: `git prune` removes what a killed writer leaves behind
        tmp = folder / f"tmp_obj_cms_{os.getpid()}_{next(_tmp_names)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(zlib.compress(raw))
            while view:
                view = view[os.write(fd, view) :]
            if self._pending is not None:  # made durable with the others, then renamed
                os.close(fd)
                fd = -1
                self._pending[sha] = (kind, data)
                self._moves.append((tmp, path))
                return sha
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp, path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(folder)
        return sha


def _syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    found: Callable[[int], int] | None = getattr(libc, "syncfs", None)
    return found


_SYNCFS = _syncfs()


def sync_filesystem(path: Path) -> bool:
    """Flush everything written to the file system that holds path, in one call (Linux's
    syncfs); False where there is no such call, and the caller fsyncs file by file."""
    if _SYNCFS is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
