"""ELF note lists (Elf64_Nhdr records) and the VMCOREINFO note among them."""

from __future__ import annotations

import struct

from crashtui.dumpfile.base import ElfNote

NT_PRSTATUS = 1
_NHDR = struct.Struct("<III")  # Elf64_Nhdr: n_namesz, n_descsz, n_type


def _align4(n: int) -> int:
    return (n + 3) & ~3


def parse_notes(buf: bytes) -> list[ElfNote]:
    """Split a PT_NOTE / kdump note area into notes; stops at padding or a damaged record."""
    notes: list[ElfNote] = []
    pos = 0
    while pos + _NHDR.size <= len(buf):
        namesz, descsz, ntype = _NHDR.unpack_from(buf, pos)
        if namesz == 0 and descsz == 0 and ntype == 0:
            break  # zero padding after the last note
        name_at = pos + _NHDR.size
        desc_at = name_at + _align4(namesz)
        end = desc_at + _align4(descsz)
        if desc_at + descsz > len(buf):
            break
        name = bytes(buf[name_at:name_at + namesz]).rstrip(b"\0").decode("ascii", "replace")
        notes.append(ElfNote(name, ntype, bytes(buf[desc_at:desc_at + descsz])))
        pos = end
    return notes


def vmcoreinfo_text(raw: bytes) -> str:
    """Decode VMCOREINFO bytes (text, NUL padded)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def vmcoreinfo_from_notes(notes: list[ElfNote]) -> str | None:
    """The text of the first "VMCOREINFO" note, if any."""
    for note in notes:
        if note.name == "VMCOREINFO":
            return vmcoreinfo_text(note.desc)
    return None


def looks_like_vmcoreinfo(text: str | None) -> bool:
    """True when the text has the lines every kernel writes (OSRELEASE=, SYMBOL(...)=)."""
    return bool(text) and ("OSRELEASE=" in text or "SYMBOL(" in text)  # type: ignore[operator]


def pick_vmcoreinfo(area: str | None, notes: list[ElfNote]) -> str | None:
    """The VMCOREINFO text: the kdump area if sound, else the note, else whatever there is."""
    note = vmcoreinfo_from_notes(notes)
    for text in (area, note):
        if looks_like_vmcoreinfo(text):
            return text
    return area if area is not None else note
