"""Command line: ``python -m disvc render|rollback -f FILE`` (also the ``disvc`` script).

Offline tools around the builders; the controller itself runs as
``python -m disvc.controller``. Neither command talks to a cluster: they read
manifests and write YAML, so they compose with ``kubectl`` (``{ kubectl get
disvc N -o yaml; echo ---; kubectl get controllerrevisions -l disvc=N -o yaml; }
| python -m disvc rollback -f - | kubectl replace -f -``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from disvc import render, version
from disvc.builders import history, mode
from disvc.builders.desired import BuildOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disvc", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=version.line("disvc"))
    commands = parser.add_subparsers(dest="command", required=True)
    rendering = commands.add_parser(
        "render",
        help="print the objects the controller would create for DISVC manifests",
    )
    rendering.add_argument(
        "-f",
        "--filename",
        required=True,
        help="DISVC manifest(s), YAML; a folder reads its .yaml, .yml and .json files as kubectl -f does; '-' reads stdin",
    )
    rendering.add_argument("--generation", type=int, default=1, help="render generation N (N-v<N>; default 1)")
    rendering.add_argument(
        "--ingress-domain",
        default=BuildOptions().ingress_domain,
        help="domain of Ingress hosts N-NS.<domain> (default %(default)s)",
    )
    rendering.add_argument("--ingress-class", default=None, help="ingressClassName when the DISVC names none")
    rendering.add_argument(
        "--default-deployment-mode",
        default=None,
        choices=sorted(mode.SPELLINGS),
        help="KServe deployment mode of a DISVC without the serving.kserve.io/deploymentMode "
        "annotation, as the controller flag of the same name (default: Standard)",
    )
    rendering.add_argument(
        "--status",
        action="store_true",
        help="also print the status each DISVC reports once every ISVC is Ready",
    )
    rendering.add_argument(
        "--from",
        dest="previous",
        default=None,
        help="show a rollout: the previous manifest of the same DISVC, served and Ready",
    )
    rendering.add_argument(
        "--step",
        type=int,
        default=None,
        help="with --from: reconciles into the rollout, each new ISVC Ready before the next (default 1)",
    )
    rolling_back = commands.add_parser(
        "rollback",
        help="print the DISVC with an earlier generation's template (from its ControllerRevision) put back",
    )
    rolling_back.add_argument(
        "-f", "--filename", required=True, help="the DISVC as `kubectl get disvc N -o yaml` prints it, followed by its ControllerRevisions "
        "(`kubectl get controllerrevisions -l disvc=N -o yaml`); '-' reads stdin"
    )
    rolling_back.add_argument(
        "--to", default=None, help="generation to restore, e.g. v3 (default: the one before the current template)"
    )
    return parser


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})


def _read(filename: str) -> str:
    if filename == "-":
        return sys.stdin.read()
    with open(filename, encoding="utf-8") as manifest:
        return manifest.read()


def _read_all(filename: str) -> list[tuple[str, str]]:
    """``(source, text)`` of each manifest ``-f`` names: a file, stdin, or each
    manifest file of a folder in name order (kustomize's own file, which is no
    Kubernetes object, left out), as ``kubectl -f DIR`` reads a folder."""
    if filename == "-":
        return [("<stdin>", sys.stdin.read())]
    folder = Path(filename)
    if not folder.is_dir():
        return [(filename, _read(filename))]
    files = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix in MANIFEST_SUFFIXES and path.name not in KUSTOMIZATION_FILES
    )
    if not files:
        raise FileNotFoundError(0, f"no {', '.join(MANIFEST_SUFFIXES)} files in the folder", filename)
    return [(str(path), _read(str(path))) for path in files]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = f"disvc {args.command}"
    source = "<stdin>" if args.filename == "-" else args.filename
    if args.command == "render" and args.step is not None and args.previous is None:
        print("disvc render: --step needs --from (the previous manifest the rollout starts from)", file=sys.stderr)
        return 2
    try:
        if args.command == "rollback":
            text = _read(args.filename)
        else:
            manifests = _read_all(args.filename)
        previous = _read(args.previous) if getattr(args, "previous", None) else None
    except OSError as problem:
        print(f"{command}: {problem.filename or source}: {problem.strerror or problem}", file=sys.stderr)
        return 1
    if args.command == "rollback":
        return _rollback(text, source, args.to)
    step = 1 if args.step is None else args.step
    if args.generation < 1 or step < 0:
        print("disvc render: --generation must be at least 1 and --step at least 0", file=sys.stderr)
        return 2
    options = render.RenderOptions(
        # offline: a DISVC naming a Gateway renders its HTTPRoute
        build=BuildOptions(
            ingress_domain=args.ingress_domain,
            ingress_class=args.ingress_class,
            gateway_api=True,
            grpc_route=True,
            default_deployment_mode=mode.parse(args.default_deployment_mode),
        ),
        generation=args.generation,
        with_status=args.status,
    )
    try:
        if previous is not None:
            if len(manifests) > 1:
                raise render.RenderError(f"{source}: --from compares one manifest, not a folder")
            ((source, text),) = manifests
            disvcs = render.load(text, source)
            (old,) = render.load(previous, args.previous)[:1]
            objects = render.rollout(old, disvcs[0], source, step, options)
        else:
            objects = [
                obj for source, text in manifests for obj in render.render(render.load(text, source), source, options)
            ]
    except render.RenderError as problem:
        print(f"disvc render: {problem}", file=sys.stderr)
        return 1
    sys.stdout.write(render.dump(objects))
    return 0


def _rollback(text: str, source: str, to: str | None) -> int:
    try:
        disvcs, revisions = render.load_with_revisions(text, source)
        restored = history.rollback(history.resolved(disvcs[0], revisions), to)
    except (render.RenderError, history.NoRollbackTarget) as problem:
        print(f"disvc rollback: {problem}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump(restored, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
