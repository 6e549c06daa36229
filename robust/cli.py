"""``robust <command>``: the pipeline's steps for use outside DVC, plus small tools."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from robust.errors import RobustError


def report_user_errors(main: Callable[[], object]) -> Callable[[], int]:
    """Wrap a command so a :class:`RobustError` prints one line and exits 2 (no traceback)."""

    def wrapped() -> int:
        try:
            main()
        except RobustError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: nothing half-written was kept", file=sys.stderr)
            return 130
        return 0

    return wrapped


def _prepare(args: argparse.Namespace) -> None:
    from robust.data.prepare import prepare
    from robust.params import DataParams, load_section

    params = DataParams.from_dict(load_section(args.params, "data"))
    infos = prepare(params, args.out)
    for split, info in infos.items():
        print(f"{split}: {info['num_samples']} samples in {len(info['shards'])} shards ({info['num_skipped']} skipped)")


def _sources(_: argparse.Namespace) -> None:
    from robust.params import SOURCES

    print("\n".join(SOURCES))


def _info(args: argparse.Namespace) -> None:
    from robust.data.shards import read_info

    info = read_info(args.folder)
    summary = {k: info[k] for k in ("split", "source", "image_size", "format", "num_classes", "num_samples", "num_skipped")}
    summary["shards"] = len(info["shards"])
    print(json.dumps(summary, indent=2))


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], None]]] = {
    "prepare": ("build clean train/val/test shards from the data: section of a params file", _prepare),
    "sources": ("list the dataset sources data.source accepts", _sources),
    "info": ("summarise a shard folder's info.json", _info),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == "prepare":
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
            cmd.add_argument("--out", type=Path, default=Path("data/shards/clean"), help="output folder (default: data/shards/clean)")
        if name == "info":
            cmd.add_argument("folder", type=Path, help="a shard folder, e.g. data/shards/clean/train")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_user_errors(lambda: COMMANDS[args.command][1](args))()


if __name__ == "__main__":
    sys.exit(main())
