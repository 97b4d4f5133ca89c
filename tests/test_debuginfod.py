"""--fetch against a real debuginfod (elfutils' server, Debian package `debuginfod`).

The server runs in a network namespace of its own (`unshare --net`: only a loopback
interface, so it is reachable from nowhere else) and scans (-F) a directory holding the
sample dumps' debug vmlinux, as extracted from linux-image-6.1.0-56-cloud-amd64-dbg once by
the tests' cache. Clients enter that namespace with `nsenter --net`. Also: a server that is
down (connection refused), one that answers 404, one that sends the wrong file, one that
never answers, and the cache (a second run makes no request).
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crashtui.debuginfo.debuginfod import (
    DebuginfodError,
    cache_root,
    cached_path,
    fetch_debuginfo,
    server_urls,
)
from tests.conftest import ROOT, SAMPLES

BUILD_ID = "3b43fad5034874490492495d552c0af6a5fab235"  # 6.1.0-56-cloud-amd64's vmlinux
DUMP = next((SAMPLES / "6.1-sysrq").glob("dump.*"))
PORT = 8002  # inside the server's own network namespace every port is free
# SIOCSIFFLAGS(lo, IFF_UP | IFF_LOOPBACK | IFF_RUNNING): bring the namespace's loopback up
LO_UP = ("import socket, fcntl, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
         "fcntl.ioctl(s, 0x8914, struct.pack('16sH', b'lo', 0x1 | 0x8 | 0x40))")


class NetnsDebuginfod:
    """debuginfod -F over one directory, alone in a new network namespace."""

    def __init__(self, served: Path, work: Path, scan: str = "-F") -> None:
        self.work = work
        self.log = work / "debuginfod.log"
        cmd = (f"{sys.executable} -c \"{LO_UP}\" && exec debuginfod {scan} -L -p {PORT} "
               f"-d {work / 'db.sqlite'} -t 0 -g 0 --disable-source-scan -v {served}")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(["unshare", "--net", "sh", "-c", cmd], stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env={**os.environ, "TMPDIR": str(work)})
        self.url = f"http://127.0.0.1:{PORT}"

    def run(self, *cmd: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
        """Run a command in the server's network namespace."""
        return subprocess.run(["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", *cmd],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=ROOT)

    def metrics(self) -> dict[str, float]:
        res = self.run(sys.executable, "-c", "import urllib.request; print(urllib.request."
                       f"urlopen('{self.url}/metrics', timeout=5).read().decode())", timeout=30)
        if res.returncode != 0:
            return {}
        out = {}
        for line in res.stdout.splitlines():
            key, _, value = line.rpartition(" ")
            try:
                out[key] = float(value)
            except ValueError:
                continue
        return out

    def debuginfo_requests(self) -> int:
        return int(self.metrics().get('http_requests_total{type="debuginfo"}', 0))

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"debuginfod exited: {self.log.read_text()[-2000:]}")
            m = self.metrics()
            found = sum(v for k, v in m.items() if k.startswith("found_debuginfo_total"))
            if m.get("ready") == 1 and found >= 1:
                return
            time.sleep(0.2)
        raise RuntimeError(f"debuginfod did not index in {timeout} s: "
                           f"{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def need_debuginfod() -> None:
    """Skip unless debuginfod can run in a network namespace of its own."""
    if shutil.which("debuginfod") is None:
        pytest.skip("debuginfod is not installed (apt-get install debuginfod)")
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("unshare/nsenter (util-linux) are not installed")
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace (needs root / CAP_SYS_ADMIN)")


@pytest.fixture(scope="module")
def server(vmlinux_path: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[NetnsDebuginfod]:
    need_debuginfod()
    served = tmp_path_factory.mktemp("served")
    (served / vmlinux_path.name).symlink_to(vmlinux_path)  # the -dbg package's file, extracted
    srv = NetnsDebuginfod(served, tmp_path_factory.mktemp("debuginfod"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def cli_env(cache: Path, urls: str) -> dict[str, str]:
    return {"CRASHTUI_CACHE": str(cache), "CRASHTUI_DEBUG_ROOT": "", "DEBUGINFOD_URLS": urls,
            "DEBUGINFOD_TIMEOUT": "30", "PYTHONPATH": str(ROOT)}


def test_fetch_downloads_caches_and_uses(server: NetnsDebuginfod, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = server.debuginfo_requests()
    res = server.run(sys.executable, "-m", "crashtui.cli", str(DUMP), "--fetch", "-c", "sys",
                     "-c", "sym panic", env=cli_env(cache, server.url))
    assert res.returncode == 0, res.stderr
    target = cache / "debuginfod" / BUILD_ID / "debuginfo"
    assert f"crashtui: debug info: {target} (fetched from debuginfod, build-id {BUILD_ID})" \
        in res.stderr
    assert "100%" in res.stderr  # the progress bar got to the end
    assert f"KERNEL: {target}" in res.stdout
    assert "kernel/panic.c" in res.stdout  # DWARF source lines: the fetched vmlinux is used
    assert server.debuginfo_requests() == before + 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["debuginfo"]  # no partial file

    # a second run uses the cache: no request
    again = server.run(sys.executable, "-m", "crashtui.cli", str(DUMP), "--fetch", "-c", "sys",
                       env=cli_env(cache, server.url))
    assert again.returncode == 0, again.stderr
    assert f"(found by build-id in the debuginfod cache, build-id {BUILD_ID})" in again.stderr
    assert f"KERNEL: {target}" in again.stdout
    assert server.debuginfo_requests() == before + 1

    # and without --fetch, without a server at all (outside the namespace)
    offline = subprocess.run([sys.executable, "-m", "crashtui.cli", str(DUMP), "-c", "sys"],
                             capture_output=True, text=True, timeout=120, cwd=ROOT,
                             env={**os.environ, **cli_env(cache, "")})
    assert offline.returncode == 0 and f"KERNEL: {target}" in offline.stdout


def test_fetch_404_falls_back_to_memory(server: NetnsDebuginfod, tmp_path: Path) -> None:
    """The 6.12 dump's build-id is not served: 404, then the in-memory tables are used."""
    dump = next((SAMPLES / "6.12-sysrq").glob("dump.*"), None)
    if dump is None:
        pytest.skip("no 6.12 sample dump")
    before = server.debuginfo_requests()
    res = server.run(sys.executable, "-m", "crashtui.cli", str(dump), "--fetch", "-c", "bt",
                     env=cli_env(tmp_path / "cache", server.url))
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f"crashtui: --fetch: build-id d01f77c7eb9976096e297898b0aa41e36eac"
                               f"404b not fetched: {server.url}: not found (404)")
    assert lines[1].startswith("crashtui: no debug vmlinux for 6.12.118+deb13-cloud-amd64")
    assert "sysrq_handle_crash" in res.stdout
    assert server.debuginfo_requests() == before + 1
    assert not (tmp_path / "cache" / "debuginfod").exists() or not any(
        (tmp_path / "cache" / "debuginfod").rglob("debuginfo"))


def test_fetch_tries_the_next_server(server: NetnsDebuginfod, tmp_path: Path) -> None:
    """A server that is down first in DEBUGINFOD_URLS, then the real one."""
    code = ("import sys; from crashtui.debuginfo.debuginfod import fetch_debuginfo; "
            f"f = fetch_debuginfo('{BUILD_ID}'); print(f.url, f.path)")
    res = server.run(sys.executable, "-c", code,
                     env=cli_env(tmp_path / "cache", f"http://127.0.0.1:1 {server.url}"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [server.url, str(cached_path(BUILD_ID, tmp_path / "cache"))]


DEB = "linux-image-6.1.0-56-cloud-amd64-dbg_6.1.192-2_amd64.deb"


@pytest.mark.slow
def test_fetch_from_the_dbg_deb_itself(tmp_path: Path) -> None:
    """debuginfod indexing the -dbg .deb (-Z .deb=dpkg-deb --fsys-tarfile): ~1 min."""
    need_debuginfod()
    deb = Path("/var/cache/crashtui-dl") / DEB
    if not deb.is_file():
        from tests.conftest import cache_dir

        deb = cache_dir() / "deb" / DEB
        if not deb.is_file():
            deb.parent.mkdir(parents=True, exist_ok=True)
            got = subprocess.run(["apt-get", "download",
                                  "linux-image-6.1.0-56-cloud-amd64-dbg=6.1.192-2"],
                                 cwd=deb.parent, capture_output=True, text=True, timeout=1800)
            if got.returncode != 0 or not deb.is_file():
                pytest.skip(f"cannot download {DEB}: {got.stderr.strip()[-300:]}")
    served = tmp_path / "served"
    served.mkdir()
    (served / DEB).symlink_to(deb)
    work = tmp_path / "work"
    work.mkdir()
    srv = NetnsDebuginfod(served, work, scan="-Z '.deb=dpkg-deb --fsys-tarfile'")
    try:
        srv.wait_ready(timeout=600)
        code = ("from crashtui.debuginfo.debuginfod import fetch_debuginfo; "
                f"print(fetch_debuginfo('{BUILD_ID}').path)")
        res = srv.run(sys.executable, "-c", code, env=cli_env(tmp_path / "cache", srv.url),
                      timeout=600)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == str(cached_path(BUILD_ID, tmp_path / "cache"))
    finally:
        srv.stop()


# -- servers that fail, without debuginfod ----------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DebuginfodError) as err:
        fetch_debuginfo(BUILD_ID, [url], cache=tmp_path, timeout=5)
    assert err.value.message == (f"build-id {BUILD_ID} not fetched: {url}: connection refused "
                                 "(server down?)")
    assert not any(tmp_path.rglob("*.part*")) and not any(tmp_path.rglob("debuginfo"))


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def serve(body: bytes, status: int = 200) -> tuple[http.server.HTTPServer, str]:
    """A one-file HTTP server on the loopback interface only."""
    handler = type("H", (_Handler,), {"body": body, "status": status})
    httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def test_404_and_wrong_file(tmp_path: Path, testmod_ko: Path) -> None:
    httpd, url = serve(b"", 404)
    try:
        with pytest.raises(DebuginfodError, match=r"not found \(404\)"):
            fetch_debuginfo(BUILD_ID, [url], cache=tmp_path, timeout=5)
    finally:
        httpd.shutdown()
    httpd, url = serve(b"this is no ELF file")
    try:
        with pytest.raises(DebuginfodError, match="not an ELF with a build-id"):
            fetch_debuginfo(BUILD_ID, [url], cache=tmp_path, timeout=5)
    finally:
        httpd.shutdown()
    httpd, url = serve(testmod_ko.read_bytes())  # an ELF, but of another build
    try:
        with pytest.raises(DebuginfodError, match="sent a file with build-id [0-9a-f]+ instead"):
            fetch_debuginfo(BUILD_ID, [url], cache=tmp_path, timeout=5)
    finally:
        httpd.shutdown()
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing half-written is kept


def test_cached_file_follows_the_umask(tmp_path: Path, testmod_ko: Path) -> None:
    """The download is written with mode 0o666 & ~umask (not mkstemp's 0600)."""
    from crashtui.debuginfo.locate import elf_build_id

    bid = elf_build_id(testmod_ko)
    assert bid is not None
    httpd, url = serve(testmod_ko.read_bytes())
    old = os.umask(0o027)
    try:
        fetched = fetch_debuginfo(bid, [url], cache=tmp_path, timeout=5)
    finally:
        os.umask(old)
        httpd.shutdown()
    assert fetched.path.read_bytes() == testmod_ko.read_bytes()
    assert fetched.path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in fetched.path.parent.iterdir()) == ["debuginfo"]


def test_server_that_never_answers(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(DebuginfodError, match=r"timed out after 0.5 s"):
            fetch_debuginfo(BUILD_ID, [url], cache=tmp_path, timeout=0.5)
        assert time.monotonic() - start < 5


def test_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRASHTUI_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "crashtui"
    monkeypatch.setenv("CRASHTUI_CACHE", str(tmp_path / "own"))
    assert cache_root() == tmp_path / "own"
    monkeypatch.setenv("DEBUGINFOD_URLS", "https://a.example/ file:///x  http://b.example")
    assert server_urls() == ["https://a.example", "http://b.example"]
    monkeypatch.setenv("DEBUGINFOD_URLS", "")
    with pytest.raises(DebuginfodError, match="set DEBUGINFOD_URLS"):
        fetch_debuginfo(BUILD_ID, cache=tmp_path)
    for bad in ("../../etc/passwd", "", "zz", "3b43/../x"):
        with pytest.raises(DebuginfodError, match="not a build-id"):
            fetch_debuginfo(bad, ["http://127.0.0.1:1"], cache=tmp_path)
