"""Command line: ``python -m disvc render -f FILE`` (also the ``disvc`` script).

Offline tools around the builders; the controller itself runs as
``python -m disvc.controller``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from disvc import render
from disvc.builders.desired import BuildOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disvc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rendering = commands.add_parser(
        "render",
        help="print the objects the controller would create for DISVC manifests",
    )
    rendering.add_argument(
        "-f", "--filename", required=True, help="DISVC manifest(s), YAML; '-' reads stdin"
    )
    rendering.add_argument(
        "--generation", type=int, default=1, help="render generation N (N-v<N>; default 1)"
    )
    rendering.add_argument(
        "--ingress-domain",
        default=BuildOptions().ingress_domain,
        help="domain of Ingress hosts N-NS.<domain> (default %(default)s)",
    )
    rendering.add_argument(
        "--ingress-class", default=None, help="ingressClassName when the DISVC names none"
    )
    rendering.add_argument(
        "--status",
        action="store_true",
        help="also print the status each DISVC reports once every ISVC is Ready",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.generation < 1:
        print("disvc render: --generation must be at least 1", file=sys.stderr)
        return 2
    source = "<stdin>" if args.filename == "-" else args.filename
    try:
        if args.filename == "-":
            text = sys.stdin.read()
        else:
            with open(args.filename, encoding="utf-8") as manifest:
                text = manifest.read()
    except OSError as problem:
        print(f"disvc render: {source}: {problem.strerror or problem}", file=sys.stderr)
        return 1
    options = render.RenderOptions(
        build=BuildOptions(ingress_domain=args.ingress_domain, ingress_class=args.ingress_class),
        generation=args.generation,
        with_status=args.status,
    )
    try:
        objects = render.render(render.load(text, source), source, options)
    except render.RenderError as problem:
        print(f"disvc render: {problem}", file=sys.stderr)
        return 1
    sys.stdout.write(render.dump(objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
