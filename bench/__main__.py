"""`python -m bench`: run every benchmark and print a table."""

from __future__ import annotations

import logging
import sys

from bench import pipeline


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    pipeline.main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
