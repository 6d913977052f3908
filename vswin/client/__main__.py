"""`python -m vswin.client VIDEO... --server HOST:PORT --model NAME ...`: `vswin extract` on its own.

Builds only the client's parser, so nothing of the other parts (export,
serving: TensorFlow) can be imported on the way; the production entry point
for hosts that install `vswin-serving[client]`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from vswin.client import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vswin.client", description=cli.DESCRIPTION)
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default INFO).")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
