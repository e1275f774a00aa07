"""What the benchmark scripts share: bad input (a missing data set, an unreadable file) is one line
naming the script and the input, and exit status 2, as in ``crystalmela``'s CLI; never a traceback."""
from __future__ import annotations

import functools
import sys
from pathlib import Path


def bad_input_exits_2(main):
    """Wrap a script's ``main(argv)``: a CrystalmelaError it raises is printed and gives 2."""
    @functools.wraps(main)
    def wrapped(argv=None):
        from crystalmela.plugin_api.errors import CrystalmelaError
        try:
            return main(argv)
        except CrystalmelaError as exc:
            script = Path(main.__code__.co_filename).name
            print(f"{script}: {exc}", file=sys.stderr)
            return 2
    return wrapped
