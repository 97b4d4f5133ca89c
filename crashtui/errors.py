"""Errors crashtui reports to the user: each names the problem and the file."""

from __future__ import annotations


class CrashtuiError(Exception):
    """Base of every error shown to the user as one line (never a traceback)."""

    def __init__(self, message: str, path: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DumpFormatError(CrashtuiError):
    """The dump file is not a readable kdump/flattened/ELF vmcore (bad or truncated header)."""


class DumpCorruptError(CrashtuiError):
    """A part of an otherwise readable dump is damaged (page descriptor, compressed page)."""


class PageExcludedError(CrashtuiError):
    """The physical page was filtered out of the dump (makedumpfile dump level)."""

    def __init__(self, paddr: int, path: object | None = None) -> None:
        super().__init__(f"page at physical address {paddr:#x} was excluded from the dump", path)
        self.paddr = paddr


class PageMissingError(CrashtuiError):
    """The physical address is outside every memory range the dump holds."""

    def __init__(self, paddr: int, path: object | None = None) -> None:
        super().__init__(f"physical address {paddr:#x} is not in the dump", path)
        self.paddr = paddr


class DebugInfoError(CrashtuiError):
    """The vmlinux / .ko / BTF cannot be used (not ELF, no symbols, damaged section)."""


class VmlinuxMismatchError(DebugInfoError):
    """The vmlinux was built for another kernel than the one that was dumped."""


class KernelReadError(CrashtuiError):
    """A kernel virtual address could not be read (unmapped, excluded page, bad pointer)."""

    def __init__(self, message: str, address: int | None = None) -> None:
        super().__init__(message)
        self.address = address
