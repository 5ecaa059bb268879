"""CLI: ``python -m evals.fleet build|cut``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m evals.fleet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the fleet store and its truth file")
    b.add_argument("--store", type=Path, required=True)
    b.add_argument("--seed", type=int, default=7)
    c = sub.add_parser("cut", help="cut the fleet cases into an incidents folder")
    c.add_argument("--store", type=Path, required=True)
    c.add_argument("--out", type=Path, default=Path("evals/incidents"))
    args = ap.parse_args(argv)
    if args.cmd == "build":
        from evals.fleet.build import build

        print(json.dumps(build(args.store, args.seed), indent=2, default=str))
    else:
        from evals.fleet.cut import cut

        for path in cut(args.store, args.out):
            print(path)


if __name__ == "__main__":
    main()
