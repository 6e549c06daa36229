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


def _corrupt(args: argparse.Namespace) -> None:
    import yaml

    from robust import distortions
    from robust.corrupt import corrupt
    from robust.data.shards import read_info
    from robust.params import CorruptParams, load_section

    params = CorruptParams.from_dict(load_section(args.params, "corrupt"))
    tables = (yaml.safe_load(Path(args.params).read_text()) or {}).get("distortions") or {}
    image_size = read_info(args.clean / params.splits[0])["image_size"]
    distortion = distortions.configured(args.distortion, tables.get(args.distortion), image_size)
    infos = corrupt(args.clean, args.out, distortion, args.level, params)
    for split, info in infos.items():
        print(f"{distortion.name}@{args.level} {split}: {info['num_samples']} samples in {len(info['shards'])} shards")


def _distortions(_: argparse.Namespace) -> None:
    from robust.distortions import DISTORTIONS, SUITES

    for suite, names in SUITES.items():
        print(f"{suite}:")
        for name in names:
            d = DISTORTIONS[name]
            table = f"  table {list(d.table)}" if d.table else ""
            print(f"  {name:<18} {d.family:<8} {d.levels} levels  ({d.origin}){table}")


def _params(path: Path) -> dict:
    """The whole params file (sections are validated where they are used)."""
    import yaml

    from robust.params import load_section

    load_section(path, "data")  # existence and YAML syntax, with the usual clear errors
    return yaml.safe_load(Path(path).read_text()) or {}


def _model_spec(params: dict, name: str) -> dict:
    from robust.errors import ParamError

    models = params.get("models") or {}
    if name not in models:
        raise ParamError(f"No model {name!r} in the models: section.", f"use one of: {', '.join(models) or '(none defined)'}.")
    return dict(models[name])


def _train(args: argparse.Namespace) -> None:
    from robust.methods.baseline import train_baseline

    params = _params(args.params)
    history = train_baseline(args.model, _model_spec(params, args.model), params.get("train") or {},
                             args.clean, args.models / args.model, args.logs / args.model)
    last = history["epochs"][-1]
    print(f"{args.model}: {len(history['epochs'])} epochs (resumed after {history['resumed_from']}), "
          f"train top-1 {last['train_top1']:.4f}, val top-1 {last.get('val_top1', float('nan')):.4f}")


def _evaluation_settings(params: dict) -> dict:
    from robust.params import EvaluateParams

    return EvaluateParams.from_dict(params.get("evaluate") or {})


def _load_model(spec: dict, clean: Path, weights: Path):
    from robust.errors import RobustError
    from robust.methods.baseline import build
    from robust.models import load_weights

    model = build({k: v for k, v in spec.items() if k != "pretrained"}, clean)
    if not weights.is_file():
        raise RobustError(f"Model weights {weights} not found.", "train the model first (dvc repro) or pass --weights.")
    skipped = load_weights(model, weights)
    if skipped:
        raise RobustError(f"{weights} does not fit the model: {len(skipped)} tensors missing, e.g. {skipped[0]}.", "check the architecture and its options.")
    return model


def _evaluate(args: argparse.Namespace) -> None:
    from robust.data.shards import write_json
    from robust.distortions import SUITES
    from robust.engine import pick_device
    from robust.evaluation import evaluate_model

    params = _params(args.params)
    settings = _evaluation_settings(params)
    model = _load_model(_model_spec(params, args.model), args.clean, args.models / args.model / "model.pt")
    device = pick_device(settings.device)
    model.to(device)
    suites = (params.get("corrupt") or {}).get("suites") or {}
    names = [n for suite in SUITES for n in suites.get(suite, [])]
    result = evaluate_model(model, args.clean, args.corrupt, names, batch_size=settings.batch_size, workers=settings.workers,
                            device=device, baseline=settings.baseline)
    result = {"model": args.model, **result}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"{args.model}.json", result)
    print(f"{args.model}: clean top-1 {result['clean']['top1']:.4f}, {len(result['distortions'])} distortions evaluated")


def _report(args: argparse.Namespace) -> None:
    import csv
    import json

    from robust.data.shards import atomic_dir, write_json
    from robust.report import markdown, severity_curves, summarise

    params = _params(args.params)
    settings = _evaluation_settings(params)
    evals = {p.stem: json.loads(p.read_text()) for p in sorted(args.evals.glob("*.json"))}
    if not evals:
        from robust.errors import RobustError

        raise RobustError(f"No evaluation in {args.evals}.", "run the evaluate stages first (dvc repro).")
    order = list((params.get("models") or {}))
    evals = {name: evals[name] for name in sorted(evals, key=lambda n: (order.index(n) if n in order else len(order), n))}
    summary = summarise(evals, settings.normaliser)
    write_json(args.out / "summary.json", summary)
    (args.out / "report.md").write_text(markdown(summary, evals))
    with atomic_dir(args.out / "plots" / "severity") as folder:
        for dist, rows in severity_curves(evals).items():
            with open(folder / f"{dist}.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["level", *evals])
                writer.writeheader()
                writer.writerows(rows)
    print((args.out / "report.md").read_text().split("\n## ")[0])


def _mce(args: argparse.Namespace) -> None:
    from robust.metrics import ALEXNET_IMAGENET_C, mce_report

    errors = _read_json(args.errors)
    baseline = ALEXNET_IMAGENET_C if args.baseline == "alexnet-imagenet-c" else _read_json(Path(args.baseline))
    print(json.dumps(mce_report(errors, baseline), indent=2))


def _read_json(path: Path) -> dict:
    from robust.errors import RobustError

    if not path.is_file():
        raise RobustError(f"{path} not found.", "give the path of a JSON errors file.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RobustError(f"{path} is not valid JSON ({exc}).", 'write {"clean": 0.24, "corruptions": {"fog": [0.3, ...]}}.') from exc
    if not isinstance(data, dict) or not isinstance(data.get("corruptions"), dict):
        raise RobustError(f"{path} has no 'corruptions' mapping.", 'write {"clean": 0.24, "corruptions": {"fog": [0.3, ...]}}.')
    return data


def _benchmark(args: argparse.Namespace) -> None:
    from robust.data.shards import read_info
    from robust.distortions import DISTORTIONS
    from robust.engine import pick_device
    from robust.evaluation import evaluate_model
    from robust.evaluation import errors_of
    from robust.metrics import ALEXNET_IMAGENET_C, mce_report
    from robust.models import create, load_weights

    info = read_info(args.clean / "train")
    model = create(args.model, info["num_classes"], image_size=info["image_size"], **dict(args.option or []))
    if args.weights:
        skipped = load_weights(model, args.weights)
        if skipped:
            print(f"warning: {len(skipped)} tensors kept their initialisation (shape mismatch), e.g. {skipped[0]}", file=sys.stderr)
    device = pick_device(args.device)
    model.to(device)
    result = evaluate_model(model, args.clean, args.corrupt, list(DISTORTIONS), batch_size=args.batch_size, device=device)
    if args.baseline:
        baseline = ALEXNET_IMAGENET_C if args.baseline == "alexnet-imagenet-c" else _read_json(Path(args.baseline))
        result["mce"] = mce_report(errors_of(result, list(baseline["corruptions"])), baseline)
    print(json.dumps({"model": args.model, "weights": str(args.weights) if args.weights else None, **result}, indent=2))


def _models(_: argparse.Namespace) -> None:
    from robust.models import available

    print("\n".join(available()))


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
    "train": ("train models.<name> from params.yaml on the clean shards", _train),
    "evaluate": ("evaluate a trained model on clean and every built distortion", _evaluate),
    "report": ("summarise every evaluation: CE / mCE tables, plot data", _report),
    "mce": ("CE / mCE / relative mCE from a JSON file of top-1 errors", _mce),
    "benchmark": ("evaluate any registry model with local weights on the built shards", _benchmark),
    "models": ("list the model registry", _models),
    "corrupt": ("distort clean shards with one distortion at one level", _corrupt),
    "distortions": ("list the distortion registry by suite", _distortions),
    "sources": ("list the dataset sources data.source accepts", _sources),
    "info": ("summarise a shard folder's info.json", _info),
}


def _option(text: str):
    """An architecture option value: a number when it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == "prepare":
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
            cmd.add_argument("--out", type=Path, default=Path("data/shards/clean"), help="output folder (default: data/shards/clean)")
        if name == "corrupt":
            cmd.add_argument("distortion", help="a registry name (robust distortions lists them)")
            cmd.add_argument("level", type=int, help="1..number of levels")
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
            cmd.add_argument("--clean", type=Path, default=Path("data/shards/clean"), help="clean shard root (default: data/shards/clean)")
            cmd.add_argument("--out", type=Path, required=True, help="output folder, e.g. data/shards/corrupt/fog/3")
        if name in ("train", "evaluate"):
            cmd.add_argument("model", help="a key of the models: section")
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"))
            cmd.add_argument("--clean", type=Path, default=Path("data/shards/clean"))
            cmd.add_argument("--models", type=Path, default=Path("data/models"), help="model folders (default: data/models)")
        if name == "train":
            cmd.add_argument("--logs", type=Path, default=Path("metrics/train"), help="DVCLive folders (default: metrics/train)")
        if name == "evaluate":
            cmd.add_argument("--corrupt", type=Path, default=Path("data/shards/corrupt"))
            cmd.add_argument("--out", type=Path, default=Path("metrics/eval"))
        if name == "report":
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"))
            cmd.add_argument("--evals", type=Path, default=Path("metrics/eval"))
            cmd.add_argument("--out", type=Path, default=Path("metrics"))
        if name == "mce":
            cmd.add_argument("errors", type=Path, help='JSON: {"clean": e, "corruptions": {"<name>": e or [e1..e5]}}, errors as fractions')
            cmd.add_argument("--baseline", default="alexnet-imagenet-c", help="alexnet-imagenet-c (built in, default) or a JSON file of the same form")
        if name == "benchmark":
            cmd.add_argument("model", help="a registry name (robust models lists them)")
            cmd.add_argument("--weights", type=Path, help="local state-dict file")
            cmd.add_argument("--option", nargs=2, action="append", metavar=("KEY", "VALUE"), type=_option, help="architecture option, e.g. --option width 0.5")
            cmd.add_argument("--clean", type=Path, default=Path("data/shards/clean"))
            cmd.add_argument("--corrupt", type=Path, default=Path("data/shards/corrupt"))
            cmd.add_argument("--batch-size", type=int, default=256)
            cmd.add_argument("--device", default="auto")
            cmd.add_argument("--baseline", help="also CE / mCE against alexnet-imagenet-c or a JSON errors file")
        if name == "info":
            cmd.add_argument("folder", type=Path, help="a shard folder, e.g. data/shards/clean/train")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_user_errors(lambda: COMMANDS[args.command][1](args))()


if __name__ == "__main__":
    sys.exit(main())
