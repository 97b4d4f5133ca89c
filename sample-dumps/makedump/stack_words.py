"""drgn script: the kernel-text words on a task's kernel stack, and where drgn's unwinder
starts for it (the proof behind drgn/KNOWN-ERRORS.md of the 7.x dumps).

    drgn -q -c DUMP -s VMLINUX sample-dumps/makedump/stack_words.py PID|nmiCPU ...

PID: the task's kernel stack (an NMI from user mode runs there); nmiCPU (e.g. nmi3): that
CPU's NMI stack in the cpu_entry_area (an NMI from kernel mode runs there).
"""

from __future__ import annotations

import struct
import sys

import drgn
from drgn.helpers.linux.percpu import per_cpu

prog: drgn.Program = globals()["prog"]
for arg in sys.argv[1:]:
    if arg.startswith("nmi"):
        stack = per_cpu(prog["cea_exception_stacks"], int(arg[3:])).NMI_stack
        base, size = stack.address_, drgn.sizeof(stack)
        print(f"CPU {arg[3:]}'s NMI stack {base:#x}+{size:#x}")
    else:
        thread = prog.thread(int(arg))
        task = thread.object
        trace = thread.stack_trace()
        first = f"{trace[0].pc:#x}" if len(trace) else "none"
        print(f"PID {arg} ({task.comm.string_().decode()}): drgn's stack_trace() has "
              f"{len(trace)} frame(s), the first at pc {first}")
        base, size = task.stack.value_(), 16384     # THREAD_SIZE on x86_64
    assert base is not None
    data = prog.read(base, size)
    for off in range(0, size, 8):
        word = struct.unpack_from("<Q", data, off)[0]
        if not 0xffffffff80000000 <= word < 0xffffffffff000000:
            continue
        try:
            sym = prog.symbol(word)
        except LookupError:
            continue
        if sym.kind != drgn.SymbolKind.OBJECT:
            print(f"  {base + off:#x}: {word:#x} {sym.name}+{word - sym.address:#x}")
