"""End to end: the installed `crashtui` in a real terminal (tmux), locally and over ssh.

What is checked is what a person would see: `tmux capture-pane` of the running app.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cache_dir
from test_source import fetch_linux_source

pytestmark = pytest.mark.needs_vmlinux
ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)


def installed_crashtui() -> Path:
    """The console script of the installed package (the venv's, else the PATH's)."""
    beside = Path(sys.executable).with_name("crashtui")
    if beside.is_file():
        return beside
    found = shutil.which("crashtui")
    if found is None:
        pytest.skip("the crashtui command is not installed (pip install -e .)")
    return Path(found)


class Tmux:
    """A private tmux server (its own socket) with one window of a fixed size."""

    def __init__(self, tmp: Path, term: str = "screen") -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed (apt-get install tmux)")
        self.socket = str(tmp / "tmux.sock")
        self.term = term

    def run(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-S", self.socket, *args], check=True,
                             capture_output=True, text=True, timeout=30)
        return out.stdout

    def start(self, command: str) -> None:
        w, h = SIZE
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(w), "-y", str(h),
                 "-s", "e2e", "sh", "-c", f"{command}; echo EXITED $?; sleep 60")

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", "e2e", k)
            time.sleep(0.15)

    def text(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "e2e")

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """The screen once it shows `pattern` (a regex); fails with the screen otherwise."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.text()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"never saw {pattern!r}; the screen was:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    yield t
    t.kill()


def app_command(crashtui: Path, dump: Path, vmlinux: Path, term: str,
                source: Path | None) -> str:
    """The shell command starting the app as a user would, with a fixed zone and cache."""
    # COLUMNS/LINES would override the pty's size (pytest plugins export them).
    env = ["env", "-u", "COLORTERM", "-u", "COLUMNS", "-u", "LINES", f"TERM={term}", "TZ=UTC",
           f"CRASHTUI_CACHE={cache_dir() / 'crashtui-src'}"]
    args = [str(crashtui), str(dump), str(vmlinux)]
    if source is not None:
        args += ["--source", str(source)]
    return " ".join(shlex.quote(a) for a in [*env, *args])


def optional_source() -> Path | None:
    """The linux-source tarball when it can be had; the app's fallback is checked otherwise."""
    try:
        return fetch_linux_source()
    except Exception:  # noqa: BLE001 - no network: the disassembly fallback is what shows
        return None


def walk(tmux: Tmux, with_source: bool) -> None:
    """Look at the main screen, walk frames, tabs and the command line, then quit."""
    screen = tmux.wait_for(r"sysrq_handle_crash", 60)
    first = screen.splitlines()[0]
    assert "6.1.0-56-cloud-amd64" in first and "sysrq triggered crash" in first
    assert "CPU 3" in first and "init (1)" in first
    assert re.search(r"▶ 3 init", screen), "the panic CPU is first and marked"
    assert "#3  sysrq_handle_crash+0x16" in screen
    if with_source:
        screen = tmux.wait_for(r"▶ ?155 .*panic\(\"sysrq triggered crash", 120)
        assert "drivers/tty/sysrq.c:155" in screen
    else:
        # crash's dis -l line, or its compact form in a narrow pane
        screen = tmux.wait_for(r"▶ (0xffffffff9fca8a01 <sysrq_handle_crash\+17>|\s*\+17\s+call)")
        assert "--source DIR" in screen
    # up to frame #2 and back: the source pane follows the frame
    tmux.keys("Up")
    tmux.wait_for(r"panic\.c:358 ─|panic · disassembly")
    tmux.keys("Down")
    tmux.wait_for(r"sysrq\.c:155 ─|sysrq_handle_crash · disassembly")
    # the Log tab, at the panic
    tmux.keys("4")
    tmux.wait_for(r"\] sysrq: Trigger a crash")
    # the command line
    tmux.keys(":", "kmem -i", "Enter")
    tmux.wait_for(r"TOTAL MEM\s+183434\s+716\.5 MB")
    tmux.keys("Escape", "?")
    tmux.wait_for(r"command palette: jump to a CPU")
    tmux.keys("Escape", "q")
    tmux.wait_for(r"EXITED 0")


def test_app_in_tmux(tmux: Tmux, sysrq_dump: Path, vmlinux_path: Path) -> None:
    """TERM=screen (what tmux sets: 16 colours): every view readable, no true colour used."""
    source = optional_source()
    tmux.start(app_command(installed_crashtui(), sysrq_dump, vmlinux_path, "screen", source))
    tmux.wait_for(r"sysrq_handle_crash", 60)
    coloured = tmux.text(escapes=True)
    assert "\x1b[" in coloured, "colours are used"
    assert not re.search(r"\x1b\[[0-9;]*[34]8;[25];", coloured), "only the 16 ANSI colours"
    walk(tmux, source is not None)


def test_app_in_tmux_256_colours(tmux: Tmux, testmod_dump: Path, vmlinux_path: Path,
                                 testmod_ko: Path) -> None:
    """TERM=xterm-256color with --modules: the module's own source line at once."""
    cmd = app_command(installed_crashtui(), testmod_dump, vmlinux_path, "xterm-256color", None)
    tmux.start(f"{cmd} --modules {shlex.quote(str(testmod_ko.parent))}")
    screen = tmux.wait_for(r"▶ ?9 .*printk", 60)
    assert "test-module.c:9" in screen and "exception RIP test_module_init" in screen
    assert not re.search(r"\x1b\[[0-9;]*[34]8;2;", tmux.text(escapes=True)), "no true colour"
    tmux.keys("q")
    tmux.wait_for(r"EXITED 0")


# -- over ssh -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Debian's sshd on a loopback port with a generated host key and one authorized key."""
    sshd_bin = Path("/usr/sbin/sshd")
    if not sshd_bin.is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server/openssh-client not installed (apt-get install openssh-server)")
    privsep = Path("/run/sshd")
    if not privsep.is_dir():
        try:
            privsep.mkdir(mode=0o755, parents=True)
        except OSError as exc:
            pytest.skip(f"sshd needs {privsep}: {exc}")
    d = tmp_path / "ssh"
    d.mkdir()
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True)
    auth = d / "authorized_keys"
    auth.write_text((d / "client.pub").read_text())
    auth.chmod(0o600)
    port = free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host'}",
        f"AuthorizedKeysFile {auth}", f"PidFile {d / 'sshd.pid'}", "StrictModes no",
        "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "LogLevel ERROR",
        f"AllowUsers {os.environ.get('USER') or subprocess.check_output(['id', '-un'], text=True).strip()}",
    ]) + "\n")
    proc = subprocess.Popen([str(sshd_bin), "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=(d / "sshd.log").open("wb"))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, d
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_app_over_ssh(tmux: Tmux, sshd: tuple[int, Path], sysrq_dump: Path,
                      vmlinux_path: Path) -> None:
    """The on-call case: crashtui run in an ssh session (pty through sshd), driven by keys."""
    port, d = sshd
    remote = "cd " + shlex.quote(str(ROOT)) + " && " + app_command(
        installed_crashtui(), sysrq_dump, vmlinux_path, "screen", optional_source())
    ssh = ["ssh", "-t", "-i", str(d / "client"), "-p", str(port), "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={d / 'known_hosts'}",
           "-o", "LogLevel=ERROR", "127.0.0.1", remote]
    tmux.start(" ".join(shlex.quote(a) for a in ssh))
    walk(tmux, optional_source() is not None)
