"""One crash under analysis: the kernel model plus every fact built from it, computed lazily."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from crashtui.analysis.summary import Summary, build_summary
from crashtui.kernel.printk import KernelLog, try_read_log
from crashtui.kernel.program import Kernel
from crashtui.kernel.tasks import TaskList, read_tasks


class Session:
    """The shared backend every view reads: open once, compute each fact on first use."""

    def __init__(self, kernel: Kernel, dump_path: Path, vmlinux_path: Path | None) -> None:
        self.kernel = kernel
        self.dump_path = dump_path
        self.vmlinux_path = vmlinux_path

    @classmethod
    def open(cls, dump: str | Path, vmlinux: str | Path | None = None) -> Session:
        dump_path = Path(dump)
        vmlinux_path = Path(vmlinux) if vmlinux is not None else None
        return cls(Kernel.open(dump_path, vmlinux_path), dump_path, vmlinux_path)

    @cached_property
    def log(self) -> KernelLog:
        return try_read_log(self.kernel)

    @cached_property
    def tasks(self) -> TaskList:
        return read_tasks(self.kernel)

    @cached_property
    def summary(self) -> Summary:
        kernel_path = str(self.vmlinux_path) if self.vmlinux_path else "(none: in-memory symbols)"
        return build_summary(self.kernel, self.log, self.tasks, kernel_path, str(self.dump_path))

    def close(self) -> None:
        self.kernel.close()
