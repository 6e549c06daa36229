"""``robust <command>``: the pipeline's steps for use outside DVC, plus small tools.

Each command is a thin wrapper around the library function the matching stage script calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from robust.errors import RobustError, run_step


def _prepare(args: argparse.Namespace) -> None:
    from robust.data.prepare import prepare
    from robust.params import DataParams, load_section

    infos = prepare(DataParams.from_dict(load_section(args.params, "data")), args.out)
    for split, info in infos.items():
        print(f"{split}: {info['num_samples']} samples in {len(info['shards'])} shards ({info['num_skipped']} skipped)")


def _corrupt(args: argparse.Namespace) -> None:
    from robust.distortions.corrupt import corrupt_from_params
    from robust.params import load_params

    for level, infos in corrupt_from_params(load_params(args.params), args.distortion, args.clean, args.out).items():
        for split, info in infos.items():
            print(f"{args.distortion}@{level} {split}: {info['num_samples']} samples in {len(info['shards'])} shards")


def _train(args: argparse.Namespace) -> None:
    from robust.methods import train_from_params
    from robust.params import load_params

    history = train_from_params(load_params(args.params), args.model, args.clean, args.models, args.logs)
    last = history["kept"]
    scores = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in last.items() if k.startswith(("train_", "val_")))
    print(f"{args.model}: {len(history['epochs'])} epochs (resumed after {history['resumed_from']}), kept epoch {history['best_epoch']}: {scores}")


def _evaluate(args: argparse.Namespace) -> None:
    from robust.evaluation.scoring import evaluate_from_params
    from robust.params import load_params

    result = evaluate_from_params(load_params(args.params), args.model, args.clean, args.corrupt, args.models, args.out)
    score = f"top-1 {result['clean']['top1']:.4f}" if "top1" in result["clean"] else f"loss {result['clean']['loss']:.2f}"
    print(f"{args.model}: clean {score}, {len(result['distortions'])} distortions evaluated")


def _detect_metrics(args: argparse.Namespace) -> None:
    from robust.evaluation.detection import detection_metrics, read_scores_csv

    scores, labels = read_scores_csv(args.scores)
    print(json.dumps(detection_metrics(scores, labels), indent=2))


def _report(args: argparse.Namespace) -> None:
    from robust.params import load_params
    from robust.report import write_report

    write_report(load_params(args.params), args.evals, args.out)
    print((args.out / "report.md").read_text().split("\n## ")[0])


def _read_errors(path: Path) -> dict:
    if not path.is_file():
        raise RobustError(f"{path} not found.", "give the path of a JSON errors file.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RobustError(f"{path} is not valid JSON ({exc}).", 'write {"clean": 0.24, "corruptions": {"fog": [0.3, ...]}}.') from exc
    if not isinstance(data, dict) or not isinstance(data.get("corruptions"), dict):
        raise RobustError(f"{path} has no 'corruptions' mapping.", 'write {"clean": 0.24, "corruptions": {"fog": [0.3, ...]}}.')
    return data


def _baseline(value: str) -> dict:
    from robust.evaluation.metrics import ALEXNET_IMAGENET_C

    return ALEXNET_IMAGENET_C if value == "alexnet-imagenet-c" else _read_errors(Path(value))


def _mce(args: argparse.Namespace) -> None:
    from robust.evaluation.metrics import mce_report

    print(json.dumps(mce_report(_read_errors(args.errors), _baseline(args.baseline)), indent=2))


def _benchmark(args: argparse.Namespace) -> None:
    from robust.data.shards import read_info
    from robust.distortions import DISTORTIONS
    from robust.engine import pick_device
    from robust.evaluation.scoring import errors_of, evaluate_model
    from robust.evaluation.metrics import mce_report
    from robust.models import create, load_weights

    info = read_info(args.clean / "train")
    model = create(args.model, info["num_classes"], image_size=info["image_size"], **dict(args.option or []))
    if args.weights:
        skipped = load_weights(model, args.weights)
        if skipped:
            print(f"warning: {len(skipped)} tensors kept their initialisation (shape mismatch), e.g. {skipped[0]}", file=sys.stderr)
    device = pick_device(args.device)
    published = args.baseline == "alexnet-imagenet-c"  # refused on data unlike ImageNet-C unless forced
    result = evaluate_model(model.to(device), args.clean, args.corrupt, list(DISTORTIONS), batch_size=args.batch_size, device=device,
                            baseline="alexnet-imagenet-c" if published else "pipeline", force_baseline=args.force_baseline)
    if published:
        result["mce"] = result.pop("published_alexnet")
    elif args.baseline:
        baseline = _baseline(args.baseline)
        result["mce"] = mce_report(errors_of(result, list(baseline["corruptions"])), baseline)
    print(json.dumps({"model": args.model, "weights": str(args.weights) if args.weights else None, **result}, indent=2))


def _models(_: argparse.Namespace) -> None:
    from robust.models import available

    print("\n".join(available()))


def _distortions(_: argparse.Namespace) -> None:
    from robust.distortions import DISTORTIONS, SUITES, family_of

    for suite, names in SUITES.items():
        print(f"{suite}:")
        for name in names:
            if name not in DISTORTIONS:  # CURE-TSR challenges: released files only
                print(f"  {name:<18} {family_of(name):<8} 5 levels  (released only: corrupt.source released)")
                continue
            d = DISTORTIONS[name]
            table = f"  table {list(d.table)}" if d.table else "  constants: corrupt.constants (auto | imagenet | imagecorruptions | tinyimagenet | cifar)" if d.constants else ""
            print(f"  {name:<18} {d.family:<8} {d.levels} levels  ({d.origin}){table}")


def _sources(_: argparse.Namespace) -> None:
    from robust.params import SOURCES

    print("\n".join(SOURCES))


def _info(args: argparse.Namespace) -> None:
    from robust.data.shards import read_info

    info = read_info(args.folder)
    summary = {k: info[k] for k in ("split", "source", "image_size", "format", "num_classes", "num_samples", "num_skipped")}
    summary["shards"] = len(info["shards"])
    print(json.dumps(summary, indent=2))


def _iqa(args: argparse.Namespace) -> None:
    from robust.gradient_features.iqa.run import score_root

    print(json.dumps(score_root(args.root, args.format, args.autoencoder, scale=args.scale, bootstrap=0, batch_size=args.batch_size), indent=2))


def _option(text: str) -> int | float | str:
    """An architecture option value: a number when it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], None]]] = {
    "prepare": ("build clean train/val/test shards from the data: section of a params file", _prepare),
    "corrupt": ("distort clean shards with one distortion at every level (OUT/<level>/<split>)", _corrupt),
    "train": ("train models.<name> from params.yaml on the clean shards", _train),
    "evaluate": ("evaluate a trained model on clean and every built distortion", _evaluate),
    "report": ("summarise every evaluation: CE / mCE tables, plot data", _report),
    "mce": ("CE / mCE / relative mCE from a JSON file of top-1 errors", _mce),
    "benchmark": ("evaluate any registry model with local weights on the built shards", _benchmark),
    "models": ("list the model registry", _models),
    "distortions": ("list the distortion registry by suite", _distortions),
    "sources": ("list the dataset sources data.source accepts", _sources),
    "info": ("summarise a shard folder's info.json", _info),
    "iqa": ("score PSNR, SSIM, UNIQUE and the gradient index on an IQA database (SROCC, KROCC, PLCC and RMSE after the logistic fit)", _iqa),
    "detect-metrics": ("distortion-detection metrics of a score,label CSV (label 1 = distorted, higher score = more likely distorted)", _detect_metrics),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robust", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, _) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name in ("prepare", "corrupt", "train", "evaluate", "report"):
            cmd.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
        if name in ("corrupt", "train", "evaluate", "benchmark"):
            cmd.add_argument("--clean", type=Path, default=Path("data/shards/clean"), help="clean shard root (default: data/shards/clean)")
        if name in ("evaluate", "benchmark"):
            cmd.add_argument("--corrupt", type=Path, default=Path("data/shards/corrupt"), help="distorted shard root (default: data/shards/corrupt)")
        if name == "prepare":
            cmd.add_argument("--out", type=Path, default=Path("data/shards/clean"), help="output folder (default: data/shards/clean)")
        if name == "corrupt":
            cmd.add_argument("distortion", help="a registry name (robust distortions lists them)")
            cmd.add_argument("--out", type=Path, required=True, help="output folder, e.g. data/shards/corrupt/fog (one subfolder per level)")
        if name in ("train", "evaluate"):
            cmd.add_argument("model", help="a key of the models: section")
            cmd.add_argument("--models", type=Path, default=Path("data/models"), help="model folders (default: data/models)")
        if name == "train":
            cmd.add_argument("--logs", type=Path, default=Path("metrics/train"), help="DVCLive folders (default: metrics/train)")
        if name == "evaluate":
            cmd.add_argument("--out", type=Path, default=Path("metrics/eval"))
        if name == "report":
            cmd.add_argument("--evals", type=Path, default=Path("metrics/eval"))
            cmd.add_argument("--out", type=Path, default=Path("metrics"))
        if name == "mce":
            cmd.add_argument("errors", type=Path, help='JSON: {"clean": e, "corruptions": {"<name>": e or [e1..e5]}}, errors as fractions')
            cmd.add_argument("--baseline", default="alexnet-imagenet-c", help="alexnet-imagenet-c (built in, default) or a JSON file of the same form")
        if name == "benchmark":
            cmd.add_argument("model", help="a registry name (robust models lists them)")
            cmd.add_argument("--weights", type=Path, help="local state-dict file")
            cmd.add_argument("--option", nargs=2, action="append", metavar=("KEY", "VALUE"), type=_option, help="architecture option, e.g. --option width 0.5")
            cmd.add_argument("--batch-size", type=int, default=256)
            cmd.add_argument("--device", default="auto")
            cmd.add_argument("--baseline", help="also CE / mCE against alexnet-imagenet-c (ImageNet-C-like data only) or a JSON errors file")
            cmd.add_argument("--force-baseline", action="store_true", help="compare with alexnet-imagenet-c even on data unlike ImageNet-C (warns)")
        if name == "detect-metrics":
            cmd.add_argument("scores", type=Path, help="CSV with a header and columns score,label; prints accuracy (threshold 0.5), auroc, "
                                                      "fpr95 (distorted positive, OpenOOD), fpr95_seed (clean positive, the seed's cal_metric.py), "
                                                      "detection_error, aupr_in, aupr_out as fractions")
        if name == "iqa":
            cmd.add_argument("root", type=Path, help="the database folder (tid2013, livemd) or the CSV file (csv: reference,distorted,mos|dmos[,type])")
            cmd.add_argument("--format", required=True, choices=("tid2013", "livemd", "csv"), help="the database's layout")
            cmd.add_argument("--autoencoder", type=Path, default=Path("data/iqa/autoencoder"), help="the trained sparse autoencoder (default: data/iqa/autoencoder)")
            cmd.add_argument("--scale", type=float, help="resize factor before patching (default: 0.5, the original's)")
            cmd.add_argument("--batch-size", type=int, default=16, help="pairs per batch (default: 16)")
        if name == "info":
            cmd.add_argument("folder", type=Path, help="a shard folder, e.g. data/shards/clean/train")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_step(lambda: COMMANDS[args.command][1](args))


if __name__ == "__main__":
    sys.exit(main())
