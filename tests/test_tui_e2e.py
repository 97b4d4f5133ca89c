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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import cache_dir
from test_source import fetch_linux_source

pytestmark = pytest.mark.needs_vmlinux
ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)
# Bounded waits, generous for loaded CI machines (seen: load average 8 on 2 cores).
START = 180.0  # the app's first screen: interpreter start, imports, the dump opened
STEP = 90.0  # the screen after a key
FIRST_SOURCE = 300.0  # a file read out of the tarball the first time (it is indexed then)


def _runs_this_tree(script: Path) -> bool:
    """True if a console script's interpreter imports the crashtui these tests import."""
    import crashtui

    try:
        first = script.read_bytes()[:512].split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        return False
    interpreter = first[2:].strip().split()
    if not first.startswith("#!") or not interpreter or not Path(interpreter[0]).is_file():
        return False
    probe = subprocess.run([*interpreter, "-c", "import crashtui; print(crashtui.__file__)"],
                           capture_output=True, text=True, timeout=120, cwd="/")
    return probe.returncode == 0 and Path(probe.stdout.strip()).resolve().parent == \
        Path(crashtui.__file__).resolve().parent


def crashtui_command() -> list[str]:
    """How a user starts the app: the installed console script — the one beside
    sys.executable first (scripts/test's .venv/bin, which need not be on PATH), else the
    PATH's — when it runs this tree's crashtui; else this interpreter's `-m crashtui.cli`."""
    for found in (Path(sys.executable).with_name("crashtui"), shutil.which("crashtui")):
        if found is not None and Path(found).is_file() and _runs_this_tree(Path(found)):
            return [str(found)]
    return [sys.executable, "-m", "crashtui.cli"]


class Tmux:
    """A private tmux server (its own socket) with one window of a fixed size.

    Every failed wait or check raises with the captured pane (and its scrollback), plus what
    `diagnostics` add (e.g. sshd's log), so a failure on CI can be read from its output."""

    def __init__(self, tmp: Path, term: str = "screen") -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed (apt-get install tmux)")
        self.socket = str(tmp / "tmux.sock")
        self.term = term
        self.started = time.monotonic()
        self.diagnostics: list[Callable[[], str]] = []

    def run(self, *args: str) -> str:
        try:
            out = subprocess.run(["tmux", "-S", self.socket, *args], check=True,
                                 capture_output=True, text=True, timeout=60)
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"tmux {' '.join(args)} failed: {exc.stderr}") from exc
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"tmux {' '.join(args)} did not answer in 60 s") from exc
        return out.stdout

    def start(self, command: str) -> None:
        w, h = SIZE
        self.started = time.monotonic()
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(w), "-y", str(h),
                 "-s", "e2e", "sh", "-c", f"{command}; echo EXITED $?; sleep 600")

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", "e2e", k)
            time.sleep(0.15)

    def text(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "e2e")

    def report(self, what: str, screen: str | None = None) -> str:
        """A failure message: what was expected, the pane, its scrollback, diagnostics."""
        try:
            screen = self.text() if screen is None else screen
            history = self.run("capture-pane", "-p", "-S", "-200", "-E", "-1", "-t", "e2e")
        except AssertionError as exc:
            screen, history = screen or f"(no pane: {exc})", ""
        parts = [f"{what} ({time.monotonic() - self.started:.0f} s after the start)",
                 "--- the pane " + "-" * 60, screen.rstrip()]
        if history.strip():
            parts += ["--- its scrollback " + "-" * 54, history.rstrip()]
        for diag in self.diagnostics:
            try:
                parts.append(diag())
            except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure
                parts.append(f"(diagnostic failed: {exc})")
        return "\n".join(parts)

    def wait_for(self, pattern: str, timeout: float = STEP) -> str:
        """The screen once it shows `pattern` (a regex), polled; fails with the pane."""
        deadline = time.monotonic() + timeout
        screen = ""
        while True:
            screen = self.text()
            if re.search(pattern, screen):
                return screen
            if re.search(r"^EXITED \d+", screen, re.M) and "EXITED" not in pattern:
                break  # the app ended: no use waiting
            if time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        raise AssertionError(self.report(f"never saw {pattern!r} within {timeout:.0f} s",
                                         screen))

    def check(self, ok: object, what: str, screen: str) -> None:
        """Fail with the pane unless ok."""
        if not ok:
            raise AssertionError(self.report(what, screen))

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       timeout=60)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    yield t
    t.kill()


def app_command(crashtui: list[str], dump: Path, vmlinux: Path, term: str,
                source: Path | None) -> str:
    """The shell command starting the app as a user would, with a fixed zone and cache."""
    # COLUMNS/LINES would override the pty's size (pytest plugins export them).
    env = ["env", "-u", "COLORTERM", "-u", "COLUMNS", "-u", "LINES", f"TERM={term}", "TZ=UTC",
           f"CRASHTUI_CACHE={cache_dir() / 'crashtui-src'}"]
    args = [*crashtui, str(dump), str(vmlinux)]
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
    screen = tmux.wait_for(r"#3  sysrq_handle_crash\+0x16", START)
    first = screen.splitlines()[0]
    tmux.check("6.1.0-56-cloud-amd64" in first and "sysrq triggered crash" in first
               and "CPU 3" in first and "init (1)" in first, "the summary bar", screen)
    tmux.check(re.search(r"▶ 3 init", screen), "the panic CPU is first and marked", screen)
    if with_source:
        screen = tmux.wait_for(r"▶ ?155 .*panic\(\"sysrq triggered crash", FIRST_SOURCE)
        tmux.check("drivers/tty/sysrq.c:155" in screen, "the source pane's title", screen)
    else:
        # crash's dis -l line, or its compact form in a narrow pane
        screen = tmux.wait_for(r"▶ (0xffffffff9fca8a01 <sysrq_handle_crash\+17>|\s*\+17\s+call)")
        tmux.check("--source DIR" in screen, "the hint to give the source", screen)
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
    tmux.wait_for(r"crashtui keys")  # the help screen (its end scrolls at this size)
    tmux.keys("End")
    tmux.wait_for(r"Esc or \? closes this help")
    tmux.keys("Escape", "q")
    tmux.wait_for(r"EXITED 0")


def test_the_installed_command_starts() -> None:
    """The console script scripts/test installs (.venv/bin/crashtui, maybe not on PATH)."""
    cmd = crashtui_command()
    if Path(sys.executable).with_name("crashtui").is_file():
        assert cmd == [str(Path(sys.executable).with_name("crashtui"))]
    r = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: crashtui"), r.stderr


def test_app_in_tmux(tmux: Tmux, sysrq_dump: Path, vmlinux_path: Path) -> None:
    """TERM=screen (what tmux sets: 16 colours): every view readable, no true colour used."""
    source = optional_source()
    tmux.start(app_command(crashtui_command(), sysrq_dump, vmlinux_path, "screen", source))
    tmux.wait_for(r"sysrq_handle_crash", START)
    coloured = tmux.text(escapes=True)
    tmux.check("\x1b[" in coloured, "colours are used", coloured)
    tmux.check(not re.search(r"\x1b\[[0-9;]*[34]8;[25];", coloured), "only the 16 ANSI colours",
               coloured)
    walk(tmux, source is not None)


def test_app_in_tmux_256_colours(tmux: Tmux, testmod_dump: Path, vmlinux_path: Path,
                                 testmod_ko: Path) -> None:
    """TERM=xterm-256color with --modules: the module's own source line at once."""
    cmd = app_command(crashtui_command(), testmod_dump, vmlinux_path, "xterm-256color", None)
    tmux.start(f"{cmd} --modules {shlex.quote(str(testmod_ko.parent))}")
    screen = tmux.wait_for(r"▶ ?9 .*printk", START)
    tmux.check("test-module.c:9" in screen and "exception RIP test_module_init" in screen,
               "the module's exception frame and its line", screen)
    coloured = tmux.text(escapes=True)
    tmux.check(not re.search(r"\x1b\[[0-9;]*[34]8;2;", coloured), "no true colour", coloured)
    tmux.keys("q")
    tmux.wait_for(r"EXITED 0")


# -- over ssh -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user() -> str:
    return os.environ.get("USER") or subprocess.check_output(["id", "-un"], text=True).strip()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Debian's sshd on a loopback port with a generated host key and one authorized key.

    As root (CI runs scripts/test as root on a fresh machine) everything it needs is set up
    here and a failure to start fails the test with sshd's log; as another user it skips."""
    root = os.geteuid() == 0

    def unavailable(why: str) -> None:
        if root:
            pytest.fail(why)
        pytest.skip(why)

    sshd_bin = Path("/usr/sbin/sshd")
    if not sshd_bin.is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server/openssh-client not installed (apt-get install openssh-server)")
    privsep = Path("/run/sshd")  # sshd's privilege-separation directory: root's, not writable
    try:
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
        if root:
            os.chown(privsep, 0, 0)
            privsep.chmod(0o755)
    except OSError as exc:
        unavailable(f"sshd needs {privsep}: {exc}")
    d = tmp_path / "ssh"
    d.mkdir()
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                       check=True, timeout=120)
    auth = d / "authorized_keys"
    auth.write_text((d / "client.pub").read_text())
    auth.chmod(0o600)
    port = free_port()
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host'}",
        f"AuthorizedKeysFile {auth}", f"PidFile {d / 'sshd.pid'}", "StrictModes no",
        "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "LogLevel VERBOSE",
        f"AllowUsers {_user()}",
    ]) + "\n")
    log = d / "sshd.log"
    check = subprocess.run([str(sshd_bin), "-t", "-f", str(config)], capture_output=True,
                           text=True, timeout=120)
    if check.returncode != 0:
        unavailable(f"sshd -t rejects the test configuration: {check.stderr.strip()}")
    with log.open("wb") as err:
        proc = subprocess.Popen([str(sshd_bin), "-D", "-e", "-f", str(config)],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                unavailable(f"sshd exited ({proc.returncode}): {log.read_text()[-1000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    unavailable(f"sshd not listening after 60 s: {log.read_text()[-1000:]}")
                time.sleep(0.2)
        yield port, d
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def test_app_over_ssh(tmux: Tmux, sshd: tuple[int, Path], sysrq_dump: Path,
                      vmlinux_path: Path) -> None:
    """The on-call case: crashtui run in an ssh session (pty through sshd), driven by keys."""
    port, d = sshd
    source = optional_source()
    remote = "cd " + shlex.quote(str(ROOT)) + " && " + app_command(
        crashtui_command(), sysrq_dump, vmlinux_path, "screen", source)
    ssh = ["ssh", "-t", "-i", str(d / "client"), "-p", str(port), "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={d / 'known_hosts'}",
           "-o", "ConnectTimeout=60", "-o", "LogLevel=ERROR", "127.0.0.1", remote]
    tmux.diagnostics.append(lambda: "--- sshd's log " + "-" * 58 + "\n"
                            + (d / "sshd.log").read_text()[-3000:].rstrip())
    tmux.start(" ".join(shlex.quote(a) for a in ssh))
    walk(tmux, source is not None)
