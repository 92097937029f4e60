"""What every command line of the package does with its errors: a problem the user can fix is one
line, ``error: <file or key>: <problem>``, and a status (no traceback); output piped into a reader
that stops early (``... --status | head``) ends the command quietly, with status 0."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def guard(main: Callable[[list[str] | None], int], argv: list[str] | None = None,
          errors: tuple[type[BaseException], ...] = (ValueError, OSError), status: int = 2,
          hint: str | None = None, text_exits: bool = False) -> int:
    """``main(argv)``, with ``errors`` reported in one line (exit ``status``; ``hint`` on a second
    line) and a closed pipe quiet. ``text_exits``: a ``SystemExit`` carrying a message (a check
    made before any work) is reported the same way."""
    try:
        code = main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        quiet_stdout()
        return 0
    except SystemExit as e:
        if not (text_exits and isinstance(e.code, str)):
            raise
        print(f"error: {e.code}", file=sys.stderr)
        return status
    except errors as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
        return status


def one_line(e: BaseException) -> str:
    """An error's message on one line (a library's message may span several)."""
    return " ".join(str(e).split())


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the flush at exit does not fail again on the closed pipe."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass
