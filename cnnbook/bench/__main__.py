"""Command line: ``python -m cnnbook.bench [--quick] [--only SECTION ...]``."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from ..machine import facts
from . import SECTIONS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnnbook.bench", description=__doc__
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller grids and fewer repeats (about a minute)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections: {', '.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)

    # The machine first: every number below holds for this CPU, SIMD width, BLAS kernel
    # and thread count only (issue 12), so the facts head the output.
    print("cnnbook benchmark, measured on this machine:")
    print(facts())
    print(
        "\nAll numbers are ratios or rates measured in this one run"
        " (minimum of repeats).\n"
    )
    for name in args.only or SECTIONS:
        try:
            section = importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as err:
            if err.name == f"{__package__}.{name}":
                continue  # that chapter's section is not written yet
            print(f"[{name}] skipped: {err}\n")
            continue
        start = time.perf_counter()
        for table in section.run(quick=args.quick):
            print(table.format(), end="\n\n")
        print(f"[{name}: {time.perf_counter() - start:.1f} s]\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
