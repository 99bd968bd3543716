"""``kubectl disvc VERB N``: the ``kubectl-disvc`` console script.

kubectl runs a plugin with every argument after its name, so the connection
flags (``--kubeconfig``, ``--context``, ``-n``) are accepted before or after
the verb. Exit codes: 0 done; 1 refused (nothing to do, or the verb cannot
run: the message says which) or failed; 2 a bad command line; ``status -w``
also 3 when ``--timeout`` passes first (see ``watch``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from disvc import version
from disvc.cli import abort, history, promote, retry, rollback, status, watch
from disvc.cli.errors import CliError
from disvc.cli.kube import Api, Target

PROGRAM: Final = "kubectl disvc"


def _connection_flags(suppress: bool) -> argparse.ArgumentParser:
    # On the verbs' parsers the defaults are suppressed, so a flag given
    # before the verb is not overwritten by the verb parser's default.
    default = argparse.SUPPRESS if suppress else None
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)"
    )
    flags.add_argument("--context", default=default, help="kubeconfig context (default: its current-context)")
    flags.add_argument(
        "-n", "--namespace", default=default, help="namespace of the DISVC (default: the context's, else default)"
    )
    return flags


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Watch and steer DistributedInferenceService rollouts.",
        parents=[_connection_flags(suppress=False)],
    )
    top.add_argument("--version", action="version", version=version.line("kubectl-disvc"))
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    flags = [_connection_flags(suppress=True)]

    shown = verbs.add_parser("status", parents=flags, help="generations, ISVCs, traffic, step, conditions and deadline")
    shown.add_argument("name", metavar="NAME")
    shown.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="redraw until the rollout ends; exit 0 complete, 1 stopped or deleted, 3 timed out",
    )
    shown.add_argument(
        "--timeout", type=float, default=0.0, help="with -w: give up after this many seconds (default: never)"
    )
    promoting = verbs.add_parser("promote", parents=flags, help="give a canary all traffic")
    promoting.add_argument("name", metavar="NAME")
    aborting = verbs.add_parser(
        "abort", parents=flags, help="stop a rollout: back to the serving generation's template"
    )
    aborting.add_argument("name", metavar="NAME")
    retrying = verbs.add_parser("retry", parents=flags, help="run a failed canary analysis again")
    retrying.add_argument("name", metavar="NAME")
    rolling_back = verbs.add_parser(
        "rollback", parents=flags, help="put an earlier generation's template back (from its ControllerRevision)"
    )
    rolling_back.add_argument("name", metavar="NAME")
    rolling_back.add_argument(
        "--to", default=None, metavar="vG", help="generation to restore (default: the one before the spec's)"
    )
    listing = verbs.add_parser("history", parents=flags, help="the generations that served")
    listing.add_argument("name", metavar="NAME")
    listing.add_argument(
        "--generation", default=None, metavar="vG", help="print that generation's kept template as YAML"
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = sys.stdout
    try:
        api = Api.connect(Target(args.kubeconfig, args.context, args.namespace))
        try:
            return _run(api, args, out)
        finally:
            api.close()
    except CliError as problem:
        out.flush()
        print(f"error: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(api: Api, args: argparse.Namespace, out: TextIO) -> int:
    if args.verb == "status":
        if args.timeout < 0:
            raise CliError("--timeout must be 0 (never) or more")
        if args.watch:
            return watch.follow(api, args.name, out, args.timeout or None)
        disvc = api.get_with_history(args.name)
        out.write(status.view(disvc, api.isvcs(args.name), watch.now()))
        return 0
    if args.verb == "promote":
        return promote.run(api, args.name, out)
    if args.verb == "abort":
        return abort.run(api, args.name, out)
    if args.verb == "retry":
        return retry.run(api, args.name, out)
    if args.verb == "rollback":
        return rollback.run(api, args.name, args.to, out)
    return history.run(api, args.name, args.generation, out)


if __name__ == "__main__":
    sys.exit(main())
