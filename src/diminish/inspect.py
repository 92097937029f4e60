"""``python -m diminish.inspect reconstructions ...``: the old spelling of
``python -m diminish.reconstructions ...``, kept for one release (the module's name shadowed the
standard library's ``inspect`` inside the package)."""

import sys

from .reconstructions import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] != ["reconstructions"]:
        sys.exit("usage: python -m diminish.inspect reconstructions ... (now: python -m diminish.reconstructions ...)")
    print("note: python -m diminish.inspect reconstructions is now python -m diminish.reconstructions",
          file=sys.stderr)
    sys.exit(main(args[1:]))
