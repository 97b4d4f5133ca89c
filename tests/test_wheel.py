"""A non-editable install (`pip install .`, a wheel) carries every module and the app's CSS."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

# Run in the installed copy: the app starts on the sysrq dump alone (no vmlinux) and its
# layout is the stylesheet's (#left is 20 columns wide at 120 columns; 1fr without the CSS).
PROBE = """
import asyncio, sys
from pathlib import Path
import crashtui
from crashtui.analysis.session import Session
from crashtui.tui.app import CrashtuiApp, STYLESHEET
from crashtui.tui.facade import SessionFacade

assert Path(crashtui.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), crashtui.__file__
print("stylesheet", STYLESHEET)
session = Session.open(sys.argv[1])
app = CrashtuiApp(SessionFacade(session, auto_source=False))

async def main() -> None:
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        print("left", app.query_one("#left").size.width)
        print("summary-bar", app.query_one("#summary-bar").size.height)

asyncio.run(main())
"""


def _modules(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.py")
            if "__pycache__" not in p.parts}


def test_wheel_install_is_styled(tmp_path: Path) -> None:
    if importlib.util.find_spec("wheel") is None or importlib.util.find_spec("setuptools") is None:
        pytest.skip("building offline needs setuptools and wheel in the test environment")
    src = tmp_path / "src"  # a copy: the build writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("crashtui", "styles"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True)
    site = Path(purelib.stdout.strip())
    # the dependencies (textual, numpy, ...) are the test environment's: no download
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                   check=True, capture_output=True, timeout=300)
    installed = site / "crashtui"
    assert (installed / "styles" / "crashtui.tcss").read_text() == \
        (src / "styles" / "crashtui.tcss").read_text()
    missing = sorted(_modules(src / "crashtui") - _modules(installed))
    assert not missing, f"not in the wheel (add the package to pyproject.toml's packages): {missing}"
    dump = next((SAMPLES / "6.1-sysrq").glob("dump.*"))
    probe = subprocess.run([str(python), "-c", PROBE, str(dump)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TZ": "UTC",
                                "CRASHTUI_CACHE": "off", "CRASHTUI_DEBUG_ROOT": ""})
    assert probe.returncode == 0, probe.stderr
    out = dict(line.split(" ", 1) for line in probe.stdout.splitlines())
    assert out["stylesheet"] == str(installed / "styles" / "crashtui.tcss")
    assert out["left"] == "20" and out["summary-bar"] == "1"
