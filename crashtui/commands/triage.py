"""triage: the first diagnosis of the crash (kind, culprit, bad register, signature)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crashtui.commands.registry import CommandError, command

if TYPE_CHECKING:
    from crashtui.analysis.session import Session
    from crashtui.analysis.triage import Triage


def session_triage(session: Session) -> Triage:
    """The session's triage (Session.triage, built once)."""
    return session.triage


@command("triage", "what happened: kind of crash, culprit, bad register, signature",
         "triage [-s]")
def cmd_triage(session: Session, args: list[str]) -> list[str]:
    if args == ["-s"]:
        t = session_triage(session)
        return [t.signature]
    if args:
        raise CommandError(f"triage: unsupported argument {args[0]} (try: triage, triage -s)")
    return session_triage(session).lines()
