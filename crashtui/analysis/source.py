"""Finding the source of a frame: kernel trees, DWARF paths, module dirs and source tarballs.

A DWARF file name such as `debian/build/build_amd64_none_cloud-amd64/drivers/tty/sysrq.c` or
`/build/reproducible-path/linux-6.1.192/arch/x86/entry/entry_64.S` is mapped to tree-relative
candidates (`drivers/tty/sysrq.c`) and looked up, in order, next to a module's `.ko`, in the
`--source` / `CRASHTUI_SOURCE` trees and tarballs, and in `/usr/src/linux-source-X.Y[.tar.xz]`.
A DWARF path is only a name to look up under those roots, never opened as it is: a hostile
`.ko` can name `/etc/passwd` (an absolute path is used only when it lies inside a tree). A tarball is never unpacked whole: the first read streams
it once (building an index of its members), extracts only the requested files into
`~/.cache/crashtui/src/<tarball>-<key>/` and, for a multi-block `.xz`, later reads decode just
the blocks that hold the wanted file.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import posixpath
import re
import struct
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crashtui.fileio import atomic_write

Progress = Callable[[float, str], None]
Found = Callable[[str, Path], None]

ENV_SOURCE = "CRASHTUI_SOURCE"
ENV_CACHE = "CRASHTUI_CACHE"
ENV_SRC_ROOT = "CRASHTUI_SRC_ROOT"  # where linux-source-X.Y is looked for; default /usr/src
HINT = ("no source found: run crashtui with --source DIR (a kernel tree or a source tarball "
        "such as /usr/src/linux-source-6.1.tar.xz) or set CRASHTUI_SOURCE=DIR")
MAX_MEMBER_SIZE = 32 << 20  # larger "source files" are not extracted
MAX_HEADER_SIZE = 1 << 20  # GNU long names and pax headers: a kernel path is < 4 KiB
TARBALL_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")

# The top-level directories and files of a Linux source tree.
KERNEL_TOP_DIRS = frozenset({
    "arch", "block", "certs", "crypto", "Documentation", "drivers", "fs", "include", "init",
    "io_uring", "ipc", "kernel", "lib", "LICENSES", "mm", "net", "rust", "samples", "scripts",
    "security", "sound", "tools", "usr", "virt",
})
# Build-directory prefixes distributions leave in DWARF file names; the rest is tree-relative.
_BUILD_PREFIXES = (
    re.compile(r"(?:^|/)debian/build/build_[^/]+/"),           # Debian's O= build dir
    re.compile(r"^/build/[^/]+/linux-[^/]+/"),                 # /build/reproducible-path/linux-X/
    re.compile(r"(?:^|/)linux-(?:source|headers|kbuild)-[^/]+/"),
    re.compile(r"(?:^|/)linux-\d[^/]*/"),                      # linux-6.1.192/
    re.compile(r"(?:^|/)BUILD/kernel-[^/]+/linux-[^/]+/"),     # rpmbuild trees
)


def clean_relpath(path: str) -> str | None:
    """A normalised relative path, or None if it is absolute, empty or escapes with `..`."""
    if not path or "\x00" in path or path.startswith("/"):
        return None
    norm = posixpath.normpath(path)
    if norm in (".", "..") or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


def tree_relative_candidates(file: str, comp_dir: str | None = None) -> list[str]:
    """Tree-relative paths a DWARF file name may stand for, most likely first."""
    out: list[str] = []

    def add(p: str) -> None:
        rel = clean_relpath(p.lstrip("/"))
        if rel is not None and rel not in out:
            out.append(rel)

    paths = [file]
    if comp_dir and not file.startswith("/"):
        paths.append(posixpath.join(comp_dir, file))
    for path in paths:
        path = re.sub(r"/{2,}", "/", path)
        for rx in _BUILD_PREFIXES:
            for m in rx.finditer(path):
                add(path[m.end():])
        parts = [p for p in path.split("/") if p not in ("", ".")]
        while parts and parts[0] == "..":
            parts.pop(0)
        for i, part in enumerate(parts[:-1]):
            if part in KERNEL_TOP_DIRS:
                add("/".join(parts[i:]))
        if not path.startswith("/"):
            add("/".join(parts))
    return out


def default_cache_root() -> Path:
    """`$CRASHTUI_CACHE`, else `$XDG_CACHE_HOME/crashtui`, else `~/.cache/crashtui`."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "crashtui"


def is_tarball(path: Path) -> bool:
    """True for a regular file named like a (compressed) tar archive."""
    return path.is_file() and path.name.endswith(TARBALL_SUFFIXES)


def source_problem(path: str | os.PathLike[str], what: str = "--source") -> str | None:
    """Why a named source place cannot be used (one line naming it), or None if it can."""
    p = Path(path)
    try:
        if p.is_dir():
            return None if os.access(p, os.R_OK | os.X_OK) else (
                f"{what} {p}: directory not readable; source pane without it")
        if is_tarball(p):
            return None if os.access(p, os.R_OK) else (
                f"{what} {p}: tarball not readable; source pane without it")
        exists = p.exists()
    except OSError as exc:
        return f"{what} {p}: {exc.strerror or exc}; source pane without it"
    if not exists:
        return f"{what} {p}: no such file or directory; source pane without it"
    return (f"{what} {p}: neither a directory nor a source tarball "
            f"({', '.join(TARBALL_SUFFIXES[:4])}…); source pane without it")


def _member_relpath(name: str) -> str | None:
    """A tar member's path inside the tree: the top directory (`linux-6.1.192/`) dropped."""
    rel = clean_relpath(name)
    if rel is None:
        return None
    parts = rel.split("/")
    if len(parts) > 1 and parts[0] not in KERNEL_TOP_DIRS:
        parts = parts[1:]
    return "/".join(parts)


@dataclass(frozen=True)
class XzBlock:
    """One block of an .xz stream: where it sits in the file and in the decompressed data."""

    comp_offset: int
    comp_size: int  # padded to 4 bytes
    uncomp_offset: int
    uncomp_size: int


def _read_vli(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(9):
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad xz variable-length integer")


def xz_blocks(fileobj: IO[bytes]) -> list[XzBlock] | None:
    """The block index of a single-stream .xz file, or None if it is not one."""
    try:
        fileobj.seek(0, os.SEEK_END)
        size = fileobj.tell()
        fileobj.seek(0)
        header = fileobj.read(12)
        if size < 32 or header[:6] != b"\xfd7zXZ\x00":
            return None
        fileobj.seek(size - 12)
        footer = fileobj.read(12)
        if footer[10:12] != b"YZ":
            return None
        index_size = (struct.unpack_from("<I", footer, 4)[0] + 1) * 4
        index_start = size - 12 - index_size
        if index_start < 12:
            return None
        fileobj.seek(index_start)
        index = fileobj.read(index_size)
        if index[0] != 0:
            return None
        count, pos = _read_vli(index, 1)
        blocks: list[XzBlock] = []
        comp = 12
        uncomp = 0
        for _ in range(count):
            unpadded, pos = _read_vli(index, pos)
            usize, pos = _read_vli(index, pos)
            padded = (unpadded + 3) & ~3
            blocks.append(XzBlock(comp, padded, uncomp, usize))
            comp += padded
            uncomp += usize
        if comp != index_start:  # a second stream or padding: not handled
            return None
        return blocks
    except (OSError, ValueError, IndexError, struct.error):
        return None


class _CountingReader:
    """A read-only file wrapper that reports how far through the file reading has got."""

    def __init__(self, raw: IO[bytes], total: int, progress: Progress | None, label: str) -> None:
        self.raw = raw
        self.total = max(total, 1)
        self.done = 0
        self.progress = progress
        self.label = label
        self._last = -1.0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.done += len(data)
        frac = self.done / self.total
        if self.progress is not None and frac - self._last >= 0.01:
            self._last = frac
            self.progress(min(frac, 1.0), self.label)
        return data


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose extended parts (GNU long name/link, pax) are refused when they
    claim more than MAX_HEADER_SIZE: tarfile would read all of them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                         tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE) \
                and self.size > MAX_HEADER_SIZE:
            raise tarfile.ReadError(f"a tar header at offset {self.offset} claims "
                                    f"{self.size} bytes of names or attributes")
        return super()._proc_member(tarfile_)  # type: ignore[misc,no-any-return]


@dataclass
class _Member:
    offset: int  # of the data in the decompressed tar
    size: int


class SourceTarball:
    """A kernel source tarball read in place: members extracted on demand into a cache dir."""

    def __init__(self, path: Path, cache_root: Path | None = None) -> None:
        self.path = path.resolve()
        st = self.path.stat()
        key = hashlib.sha256(f"{self.path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
        self.cache_dir = (cache_root or default_cache_root()) / "src" / f"{self.path.name}-{key[:16]}"
        self._lock = threading.Lock()
        self._index: dict[str, _Member] | None = None
        self._index_loaded = False
        self.error: str | None = None  # why the last read stopped early

    # -- the member index ------------------------------------------------------------------

    @property
    def _index_file(self) -> Path:
        return self.cache_dir / ".index"

    def index(self) -> dict[str, _Member] | None:
        """Every regular member (tree-relative path → data offset and size), once known."""
        if not self._index_loaded:
            self._index_loaded = True
            try:
                members: dict[str, _Member] = {}
                for line in self._index_file.read_text("utf-8").splitlines():
                    off, size, name = line.split(" ", 2)
                    members[name] = _Member(int(off), int(size))
                self._index = members
            except (OSError, ValueError):
                self._index = None
        return self._index

    def _save_index(self, members: dict[str, _Member]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{m.offset} {m.size} {name}\n" for name, m in members.items()
                       if "\n" not in name)
        atomic_write(self._index_file, text.encode("utf-8"))
        self._index = members
        self._index_loaded = True

    def version(self) -> str | None:
        """The tree's X.Y.Z from its top Makefile, once a read extracted it (else None)."""
        p = self.cached("Makefile")
        if p is None and self.has("Makefile"):  # indexed: one block read (a worker's call)
            p = self.extract(["Makefile"]).get("Makefile")
        if p is None:
            return None
        try:
            return makefile_version(p.read_text("utf-8", "replace"))
        except OSError:
            return None

    def has(self, rel: str) -> bool | None:
        """Whether the tarball holds `rel` (None: not known until the first read)."""
        idx = self.index()
        return None if idx is None else rel in idx

    def cached(self, rel: str) -> Path | None:
        """The extracted copy of `rel`, if a previous read already put it in the cache."""
        safe = clean_relpath(rel)
        if safe is None:
            return None
        p = self.cache_dir / safe
        return p if p.is_file() else None

    # -- extraction ------------------------------------------------------------------------

    def _dest(self, rel: str) -> Path | None:
        safe = clean_relpath(rel)
        if safe is None:
            return None
        root = self.cache_dir.resolve()
        dest = (root / safe).resolve()
        if not dest.is_relative_to(root) or dest == root:
            return None
        return dest

    def _store(self, rel: str, data: bytes) -> Path | None:
        dest = self._dest(rel)
        if dest is None:
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, data)
        return dest

    def extract(self, wanted: Iterable[str], progress: Progress | None = None,
                on_found: Found | None = None) -> dict[str, Path]:
        """Extract the wanted tree-relative files (those the tarball has); blocking.

        on_found(rel, path) is called as each file lands, before the whole pass ends."""
        want = {w for w in (clean_relpath(x) for x in wanted) if w is not None}
        if want and self.cached("Makefile") is None:
            want.add("Makefile")  # the tree's version, to compare with the kernel's
        with self._lock:
            found = {rel: p for rel in want if (p := self.cached(rel)) is not None}
            want -= set(found)
            idx = self.index()
            if idx is not None:
                want = {rel for rel in want if rel in idx}
            if not want:
                return found
            if idx is not None:
                direct = self._extract_blocks(want, idx, progress)
                if direct is not None:
                    found.update(direct)
                    return found
            found.update(self._extract_stream(want, progress, on_found))
            return found

    def _extract_blocks(self, want: set[str], idx: dict[str, _Member],
                        progress: Progress | None) -> dict[str, Path] | None:
        """Read members by decoding only their .xz blocks (None: the file is not seekable so)."""
        with self.path.open("rb") as f:
            blocks = xz_blocks(f)
            if blocks is None:
                return None
            f.seek(0)
            header = f.read(12)
            out: dict[str, Path] = {}
            for n, rel in enumerate(sorted(want, key=lambda r: idx[r].offset)):
                m = idx[rel]
                if m.size > MAX_MEMBER_SIZE:
                    continue
                if progress is not None:
                    progress(n / len(want), f"reading {rel} from {self.path.name}")
                data = _read_xz_range(f, header, blocks, m.offset, m.size)
                if data is None:
                    return None
                p = self._store(rel, data)
                if p is not None:
                    out[rel] = p
            return out

    def _extract_stream(self, want: set[str], progress: Progress | None,
                        on_found: Found | None = None) -> dict[str, Path]:
        """Stream the whole tarball once: extract the wanted members, index all of them."""
        label = f"reading {self.path.name}"
        out: dict[str, Path] = {}
        members: dict[str, _Member] = {}
        size = self.path.stat().st_size
        try:
            self._stream_members(want, progress, label, size, members, out, on_found)
        except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
            self.error = f"damaged tarball, read stopped: {exc}"  # found so far is kept
            return out
        if progress is not None:
            progress(1.0, label)
        self._save_index(members)
        return out

    def _stream_members(self, want: set[str], progress: Progress | None, label: str,
                        size: int, members: dict[str, _Member], out: dict[str, Path],
                        on_found: Found | None) -> None:
        with self.path.open("rb") as raw:
            reader = _CountingReader(raw, size, progress, label)
            with tarfile.open(fileobj=reader, mode="r|*",  # type: ignore[call-overload]
                              tarinfo=_BoundedTarInfo) as tf:
                for info in tf:
                    if not info.isreg():
                        continue
                    rel = _member_relpath(info.name)
                    if rel is None:
                        continue
                    members[rel] = _Member(info.offset_data, info.size)
                    if rel in want and info.size <= MAX_MEMBER_SIZE:
                        fobj = tf.extractfile(info)
                        if fobj is not None:
                            p = self._store(rel, fobj.read())
                            if p is not None:
                                out[rel] = p
                                if on_found is not None:
                                    on_found(rel, p)


def _read_xz_range(f: IO[bytes], header: bytes, blocks: list[XzBlock],
                   offset: int, size: int) -> bytes | None:
    """Decompressed bytes [offset, offset+size) of an .xz file, decoding only their blocks."""
    first = next((i for i, b in enumerate(blocks)
                  if b.uncomp_offset <= offset < b.uncomp_offset + b.uncomp_size), None)
    if first is None:
        return b"" if size == 0 else None
    dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
    dec.decompress(header)
    pos = blocks[first].uncomp_offset
    chunks: list[bytes] = []
    need_end = offset + size
    for b in blocks[first:]:
        f.seek(b.comp_offset)
        remaining = b.comp_size
        while remaining > 0 and pos < need_end:
            data = f.read(min(remaining, 1 << 20))
            if not data:
                return None
            remaining -= len(data)
            try:
                out = dec.decompress(data)
            except lzma.LZMAError:
                return None
            lo = max(offset - pos, 0)
            hi = min(need_end - pos, len(out))
            if hi > lo:
                chunks.append(out[lo:hi])
            pos += len(out)
        if pos >= need_end:
            break
    result = b"".join(chunks)
    return result if len(result) == size else None


_MAKEFILE_VAR = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)\s*$", re.M)
_UPSTREAM = re.compile(r"(?<![\d.])(\d+\.\d+\.\d+)(?![\d.])")


def makefile_version(text: str) -> str | None:
    """`6.1.192` from a kernel tree's top Makefile (VERSION, PATCHLEVEL, SUBLEVEL)."""
    found = dict(_MAKEFILE_VAR.findall(text[:4096]))
    if not {"VERSION", "PATCHLEVEL"} <= found.keys():
        return None
    return f"{found['VERSION']}.{found['PATCHLEVEL']}.{found.get('SUBLEVEL', '0')}"


def kernel_upstream_version(release: str | None, version: str | None) -> str | None:
    """The upstream X.Y.Z a kernel was built from: the distribution's package version in its
    uts version (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (…)`) when it has one, else its
    release when that carries it (`6.12.118+deb13-cloud-amd64`; Debian's `6.1.0-56-…` ABI
    names do not: X.Y.0 there is no sublevel)."""
    m = re.search(r"\b(?:Debian|Ubuntu)\s+(\d+\.\d+\.\d+)", version or "")
    if m:
        return m.group(1)
    m = _UPSTREAM.match(release or "")
    if m and not re.match(r"\d+\.\d+\.0-\d+-", release or ""):
        return m.group(1)
    return None


def version_note(tarball: str, tree_version: str | None, kernel_version: str | None) -> str:
    """`linux-source-6.1.tar.xz is 6.1.190, the kernel is 6.1.192` when they differ, else ""."""
    if tree_version is None or kernel_version is None or tree_version == kernel_version:
        return ""
    return f"{tarball} is {tree_version}, the kernel is {kernel_version}"


@dataclass
class SourceResult:
    """Where a source file was found (or not) and what was tried."""

    path: Path | None
    origin: str = ""  # "tree DIR", "tarball NAME", "next to MOD.ko", "DWARF path"
    tried: list[str] = field(default_factory=list)
    pending: list[tuple[SourceTarball, list[str]]] = field(default_factory=list)
    tarball: SourceTarball | None = None  # the tarball it was read from
    tree: Path | None = None  # the tree it was found in

    @property
    def tree_version(self) -> str | None:
        """X.Y.Z of the tree or tarball the file came from (its top Makefile), if known."""
        if self.tarball is not None:
            return self.tarball.version()
        if self.tree is not None:
            try:
                return makefile_version((self.tree / "Makefile").read_text("utf-8", "replace"))
            except OSError:
                return None
        return None


class SourceFinder:
    """Finds the source file of a DWARF location, from the places the user and the dump name."""

    def __init__(self, sources: Sequence[str | os.PathLike[str]] = (),
                 env: dict[str, str] | None = None, cache_root: Path | None = None,
                 release: str | None = None, module_dirs: Sequence[str | os.PathLike[str]] = (),
                 auto: bool = True) -> None:
        environ = os.environ if env is None else env
        roots: list[Path] = [Path(s) for s in sources]
        named = [Path(s) for s in environ.get(ENV_SOURCE, "").split(os.pathsep) if s]
        # places the user named that cannot be used: one line each, said by the views
        self.problems = [p for p in (
            *(source_problem(s) for s in sources),
            *(source_problem(s, ENV_SOURCE) for s in named)) if p is not None]
        roots += named
        if auto and release:
            m = re.match(r"(\d+\.\d+)", release)
            if m:
                for name in (f"linux-source-{m.group(1)}", f"linux-source-{m.group(1)}.tar.xz",
                             f"linux-source-{m.group(1)}.tar.bz2"):
                    roots.append(Path(environ.get(ENV_SRC_ROOT) or "/usr/src") / name)
        self.trees: list[Path] = []
        self.tarballs: list[SourceTarball] = []
        self.cache_root = cache_root
        for root in roots:
            if root.is_dir():
                self.trees.append(root)
            elif is_tarball(root):
                try:
                    self.tarballs.append(SourceTarball(root, cache_root))
                except OSError:
                    continue
        self.module_dirs: dict[str, Path] = {}
        self.extra_module_dirs = [Path(d) for d in module_dirs]

    @property
    def configured(self) -> bool:
        """True if any tree or tarball was named or found."""
        return bool(self.trees or self.tarballs)

    def add_module(self, name: str, ko_path: str | os.PathLike[str]) -> None:
        """Remember where a module's .ko lives: its source is looked for next to it."""
        self.module_dirs[name] = Path(ko_path).resolve().parent

    def find(self, file: str, comp_dir: str | None = None, module: str | None = None,
             progress: Progress | None = None, fetch: bool = False) -> SourceResult:
        """Look the file up; with fetch=True also read tarballs (slow: call from a worker)."""
        res = SourceResult(None)
        rels = tree_relative_candidates(file, comp_dir)
        base = posixpath.basename(file)

        def hit(p: Path, origin: str) -> bool:
            res.tried.append(str(p))
            if p.is_file():
                res.path, res.origin = p, origin
                return True
            return False

        mod_dirs = ([self.module_dirs[module]] if module in self.module_dirs else [])
        if module is not None:
            mod_dirs += self.extra_module_dirs
        for d in mod_dirs:
            if base and hit(d / base, f"module dir {d.name}/"):
                return res
        for tree in self.trees:
            for rel in rels:
                if hit(tree / rel, f"tree {tree}"):
                    res.tree = tree
                    return res
        whole = file if file.startswith("/") else posixpath.join(comp_dir or "", file)
        if whole.startswith("/"):
            for tree in self.trees:
                if _inside(Path(whole), tree) and hit(Path(whole), f"tree {tree}"):
                    res.tree = tree
                    return res
        for tb in self.tarballs:
            for rel in rels:
                p = tb.cached(rel)
                if p is not None:
                    res.path, res.origin, res.tarball = p, f"tarball {tb.path.name}", tb
                    return res
            known = [rel for rel in rels if tb.has(rel) is not False]
            if known:
                res.pending.append((tb, known))
        if fetch:
            for tb, known in res.pending:
                got = tb.extract(known, progress)
                for rel in known:
                    if rel in got:
                        res.path, res.origin = got[rel], f"tarball {tb.path.name}"
                        res.tarball = tb
                        res.pending = []
                        return res
                res.tried.append(f"{tb.path.name}: {', '.join(known[:2])}"
                                 + (f" ({tb.error})" if tb.error else ""))
            res.pending = []
        return res

    def prefetch(self, locations: Iterable[tuple[str, str | None]],
                 progress: Progress | None = None, on_found: Found | None = None) -> None:
        """Read many files out of the tarballs in one pass (e.g. every frame's file)."""
        wanted: dict[int, set[str]] = {}
        for file, comp_dir in locations:
            res = self.find(file, comp_dir)
            for tb, rels in res.pending:
                wanted.setdefault(id(tb), set()).update(rels)
        for tb in self.tarballs:
            if id(tb) in wanted:
                tb.extract(wanted[id(tb)], progress, on_found)

    def describe(self) -> str:
        """One line naming where source is looked for."""
        places = [str(t) for t in self.trees] + [str(t.path) for t in self.tarballs]
        return ", ".join(places) if places else "(no source tree or tarball configured)"


def _inside(path: Path, root: Path) -> bool:
    """True if `path` (symlinks resolved) lies inside the directory `root`."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def display_path(file: str, comp_dir: str | None = None) -> str:
    """The tree-relative form of a DWARF file name for titles (`drivers/tty/sysrq.c`)."""
    if file.startswith("/") and not any(rx.search(file) for rx in _BUILD_PREFIXES):
        return file
    rels = tree_relative_candidates(file, comp_dir)
    return rels[0] if rels else file


def read_source(path: Path) -> str:
    """A source file's text (undecodable bytes replaced)."""
    return path.read_bytes().decode("utf-8", errors="replace")


def lexer_name(path: str) -> str:
    """The pygments lexer for a kernel source file."""
    low = path.lower()
    if low.endswith((".s",)):
        return "gas"
    if low.endswith((".rs",)):
        return "rust"
    if low.endswith(("makefile", "kbuild", ".mk")):
        return "make"
    return "c"
