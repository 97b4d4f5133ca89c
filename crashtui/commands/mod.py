"""mod: the loaded modules, and loading their .ko debug info (crash's `mod`, `mod -s`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crashtui.commands.registry import CommandError, command
from crashtui.textsafe import terminal_safe

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.kernel.modules import Module, ModuleTable

NOT_LOADED = "(not loaded)  [CONFIG_KALLSYMS]"


def _object(table: ModuleTable, mod: Module) -> str:
    di = table.debuginfo.get(mod.name)
    # crash prints a loaded object's path followed by one space
    return f"{di.path} " if di is not None else NOT_LOADED


def module_lines(table: ModuleTable, only: list[str] | None = None) -> list[str]:
    """crash's `mod` table: every module sorted by base (or just the ones named in `only`)."""
    mods = table.modules
    # widths as shown: a name with control characters is printed escaped (terminal_safe)
    name_w = max([len("NAME")] + [len(terminal_safe(m.name)) for m in mods])
    size_w = max([len("SIZE")] + [len(str(m.size)) for m in mods])
    # 6.4+ (struct module_memory): crash names the column after mem[MOD_TEXT]
    base = "TEXT_BASE" if any(r.kind == "text" for m in mods for r in m.regions) else "BASE"
    out = [f"{'MODULE':^16}  {'NAME':<{name_w}}  {base:^16}  {'SIZE':>{size_w}}  OBJECT FILE"]
    for m in mods:
        if only is not None and m.name not in only:
            continue
        # %lx right-justified, as crash: a 6.12 module still in its init (no core text yet)
        # has TEXT_BASE "               0"
        pad = " " * (name_w - len(terminal_safe(m.name)))
        out.append(f"{m.address:016x}  {m.name}{pad}  {m.base:>16x}  "
                   f"{m.size:>{size_w}}  {_object(table, m)}")
    out += [f"mod: {e}" for e in table.errors]
    return out


def taint_lines(table: ModuleTable) -> list[str]:
    """crash's `mod -t`: the modules that taint the kernel, with their taint letters."""
    tainted = [m for m in table.modules if m.taints]
    if not tainted:
        return ["no tainted modules"]
    width = max([len("NAME")] + [len(m.name) for m in tainted])
    return [f"{'NAME':<{width}}  TAINTS"] + [f"{m.name:<{width}}  {m.taint_flags}"
                                            for m in tainted]


def module_rows(session: Session) -> list[dict[str, Any]]:
    """The modules as plain JSON values, in crash's order."""
    table = session.modules
    return [{"name": m.name, "base": f"{m.base:016x}", "size": m.size,
             "object": str(table.debuginfo[m.name].path) if m.name in table.debuginfo else None,
             "struct_module": f"{m.address:016x}", "taints": m.taint_flags,
             "state": m.state_name}
            for m in table.modules]


@command("mod", "loaded modules; -s NAME FILE loads a module's .ko debug info",
         "mod [-s NAME FILE | -S DIR | -d NAME | -t]")
def cmd_mod(session: Session, args: list[str]) -> list[str]:
    table = session.modules
    if not args:
        return module_lines(table)
    opt, rest = args[0], args[1:]
    if opt == "-s":
        if len(rest) != 2:
            raise CommandError("mod -s: give the module name and its .ko file: mod -s NAME FILE")
        di = session.load_module_debuginfo(rest[0], rest[1])
        return module_lines(table, only=[di.module])
    if opt == "-S":
        if len(rest) > 1:
            raise CommandError("mod -S: give the directory holding the .ko files: mod -S DIR")
        if not rest:  # crash's default: the dumped kernel's tree on this machine
            from pathlib import Path

            from crashtui.kernel.system import read_utsname

            default = Path("/lib/modules") / read_utsname(session.kernel).release
            if not default.is_dir():
                return [f"mod: cannot find or load object file for {terminal_safe(m.name)} "
                        "module" for m in table.modules]
            rest = [str(default)]
        problems = session.load_modules_dir(rest[0])
        return module_lines(table) + [f"mod: {p}" for p in problems]
    if opt == "-d":
        if len(rest) != 1:
            raise CommandError("mod -d: give the module name: mod -d NAME")
        if table.find(rest[0]) is None:
            raise CommandError(f"mod -d: no module {rest[0]} is loaded in the dump")
        table.unload_debuginfo(rest[0])
        return []
    if opt == "-t" and not rest:
        return taint_lines(table)
    raise CommandError(f"mod: unsupported argument {opt} (try: mod, mod -s NAME FILE, "
                       "mod -S DIR, mod -d NAME, mod -t)")
