"""One look for every command's ``--help``: defaults and choices shown, examples at the end, old
option spellings kept as hidden aliases; and what an error exit says under a launcher.

The vocabulary shared by the commands: ``--out DIR`` is always a folder and ``--out-file FILE`` a
single file; ``--jobs N`` is a number of processes; ``--mixed-precision`` is the autocast precision.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written; adds ``(default: X)`` to an option's help unless it
    already names its default, it is required, or its default is None/False (nothing to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (text == argparse.SUPPRESS or "default" in text or not action.option_strings or action.required
                or action.default is None or action.default is False or action.default == argparse.SUPPRESS
                or action.default in ([], {})):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def examples(*commands: str) -> str:
    """The epilog every command's help ends with."""
    return "examples:\n" + "\n".join(f"  {c}" for c in commands)


def hidden_alias(parser: argparse.ArgumentParser, old: str, dest: str, **kw) -> None:
    """Accept an old spelling of an option (same ``dest``) without listing it in ``--help``."""
    parser.add_argument(old, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)


def launcher_rank() -> int:
    """The rank a multi-process launcher (``accelerate launch``, ``torchrun``, and SLURM through
    them) gave this process, from the ``RANK`` variable every launcher sets; 0 without one. Only for
    what is said once per run before Accelerate starts; the run itself asks Accelerate."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launcher_note(code: int, what: str, prog: str = "diminish.run") -> None:
    """Under ``accelerate launch`` or ``torchrun`` the launcher prints its own traceback for any non-zero
    exit status; say that the error above is the whole story, and give torchrun's summary our message."""
    if not any(k in os.environ for k in ("ACCELERATE_DYNAMO_BACKEND", "TORCHELASTIC_RUN_ID")):
        return
    if code < 128:
        print(f"{prog} exited with status {code} ({what}); this is not a crash: a launcher traceback "
              "after this line only reports that exit status (accelerate launch -q leaves it out)",
              file=sys.stderr, flush=True)
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:  # torchrun's failure summary shows this instead of "<N/A>"
        message = f"{prog} exited with status {code}: {what}"
        with open(path, "w") as f:
            json.dump({"message": {"message": message, "extraInfo": {"py_callstack": message,
                                                                     "timestamp": str(int(time.time()))}}}, f)
