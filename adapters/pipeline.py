"""One distillation run: train a LoRA on a dataset, evaluate it, register it, promote it
only if it is better than the current adapter (or the base model when there is none).

Everything a run writes goes to <home>/runs/<run-id>/: run.json (status, result),
metrics.jsonl (loss and lr per step), checkpoints/, adapter/, training.png, eval.png and
report.md. `current` changes only at the very end, after the new version is fully written,
and only if it won; a run that fails or loses leaves it as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mem.adapters.data import dataset_hash, load_examples, load_heldout
from mem.adapters.evaluate import (
    ANSWER_METRICS,
    METRICS,
    Rag,
    better,
    evaluate_adapters,
    forgets,
)
from mem.adapters.options import PRIMARY_ARMS
from mem.adapters.registry import CORE, Registry, RegistryError
from mem.adapters.rehearsal import rehearsal_examples
from mem.adapters.train import (
    LoraOptions,
    TrainResult,
    cpu_dtype,
    plot_training,
    train_lora,
    use_qlora,
)
from mem.corpus.files import write_atomic
from mem.corpus.records import utc_now
from mem.models.hardware import return_freed_memory, unfreeze_cpu_weights

log = logging.getLogger("mem.adapters")


@dataclass(frozen=True)
class DistillSettings:
    base_model: str
    models_dir: Path
    lora: LoraOptions = field(default_factory=LoraOptions)  # [lora]: training and promotion
    allow_downloads: bool = False
    # Retrieval for the base+rag and adapter+rag arms: question -> the messages `mem ask`
    # would send. None skips those arms (a dataset evaluated outside a memory home).
    rag: Rag | None = None


@dataclass
class DistillResult:
    name: str
    version: str
    promoted: bool
    reason: str
    current: str | None
    run_dir: Path
    metrics: dict
    train: TrainResult

    def to_json(self) -> dict:
        return {
            "adapter": f"{self.name}/{self.version}",
            "promoted": self.promoted,
            "reason": self.reason,
            "current": self.current,
            "run_dir": str(self.run_dir),
            "metrics": self.metrics,
            "train": self.train.to_json(),
        }


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _run_info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def resumable_run(runs_dir: Path, name: str, data_hash: str) -> Path | None:
    """The newest run of this adapter on this dataset that did not finish, if any."""
    for run_dir in sorted(runs_dir.glob("distill-*"), reverse=True):
        info = _run_info(run_dir)
        if info.get("name") == name and info.get("dataset_hash") == data_hash:
            return run_dir if info.get("status") in ("running", "failed") else None
    return None


def check_settings(settings: DistillSettings) -> None:
    if settings.lora.primary_metric not in METRICS:
        raise ValueError(
            f"[lora] primary_metric {settings.lora.primary_metric!r}: one of {', '.join(METRICS)}"
        )
    if settings.lora.primary_arm not in PRIMARY_ARMS:
        raise ValueError(f"[lora] primary_arm must be one of {', '.join(PRIMARY_ARMS)}")
    if settings.lora.qlora not in ("auto", "off"):
        raise ValueError('[lora] qlora must be "auto" or "off"')


def run_distill(
    dataset_dir: Path,
    adapters_dir: Path,
    runs_dir: Path,
    settings: DistillSettings,
    name: str = CORE,
    resume: bool = False,
    progress: bool = False,
    on_step: Callable[[dict], None] | None = None,
    loaded: tuple | None = None,
) -> DistillResult:
    """Train, evaluate, register and (if better) promote one adapter version.

    loaded: an already loaded (model, tokenizer) of settings.base_model, to skip the load
    (tests and benchmarks reuse one); it comes back unchanged.
    """
    from mem.adapters.base_model import load_base

    check_settings(settings)
    if settings.lora.low_memory:
        return_freed_memory()  # before the first big tensor: training and evaluation alike
    registry = Registry(adapters_dir, name)
    dataset_dir = Path(dataset_dir)
    train = load_examples(dataset_dir, "train")
    validation = load_examples(dataset_dir, "validation")
    heldout = load_heldout(dataset_dir)
    if not train:
        raise ValueError(f"{dataset_dir} has no training examples")
    data_hash = dataset_hash(dataset_dir)

    run_dir = resumable_run(runs_dir, name, data_hash) if resume else None
    if run_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        run_dir = runs_dir / f"distill-{stamp}-{name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "name": name,
        "status": "running",
        "started_at": utc_now(),
        "dataset": str(dataset_dir),
        "dataset_hash": data_hash,
        "base_model": settings.base_model,
    }
    _write_json(run_dir / "run.json", info)
    try:
        quantize = use_qlora(settings.lora)
        model, tokenizer = loaded or load_base(
            settings.base_model,
            settings.models_dir,
            settings.allow_downloads,
            quantize,
            dtype=cpu_dtype(settings.lora),
        )
        # The base's own answers to general prompts, made before the LoRA wraps it.
        rehearsal = rehearsal_examples(model, tokenizer, settings.lora.rehearsal, progress=progress)
        trained = train_lora(
            model,
            tokenizer,
            [*train, *rehearsal],
            settings.lora,
            run_dir,
            resume,
            on_step,
            progress,
        )
        plot_training(run_dir)
        arms = {"adapter": str(trained.adapter_dir)}
        reference_name = "base"
        current = _comparable_current(registry, settings.base_model)
        if current is not None:
            arms["current"] = str(current.path)
            reference_name = "current"
        started = time.perf_counter()
        metrics = evaluate_adapters(
            model,
            tokenizer,
            arms,
            validation,
            heldout,
            settings.lora.evaluation(),
            rag=settings.rag,
            rag_arms=tuple(arms),
            control=_control(settings),
        )
        eval_seconds = time.perf_counter() - started
        with_sources = settings.lora.primary_arm == "rag" and "adapter+rag" in metrics
        won, why = better(
            judged(metrics, "adapter", with_sources),
            judged(metrics, reference_name, with_sources),
            settings.lora.primary_metric,
            settings.lora.min_gain,
        )
        arm = "with sources" if with_sources else "closed-book"
        reason = f"{'better' if won else 'not better'} than {reference_name} ({arm}): {why}"
        forgot = forgets(metrics["adapter"], metrics["base"], settings.lora.max_control_drop)
        if won and forgot:
            won, reason = False, f"{reason}, but {forgot}"
        manifest = {
            "status": "promoted" if won else "rejected",
            "reason": reason,
            "base_model": settings.base_model,
            "dataset": {"id": dataset_dir.name, "path": str(dataset_dir), "hash": data_hash},
            "counts": {
                "train": len(train),
                "rehearsal": len(rehearsal),
                "validation": len(validation),
                "heldout": len(heldout),
            },
            "hyperparameters": asdict(settings.lora),
            "primary_metric": settings.lora.primary_metric,
            "compared_with": current.version if current else "base",
            "metrics": metrics,
            "training": trained.to_json(),
            "eval_seconds": round(eval_seconds, 1),
            "run": run_dir.name,
        }
        _plot_eval(run_dir, metrics)  # before registering: nothing after it should fail
        version = registry.add(trained.adapter_dir, manifest)
        if won:
            registry.use(version.version)
        _write_report(run_dir, name, version.version, manifest)
        result = DistillResult(
            name, version.version, won, reason, registry.current(), run_dir, metrics, trained
        )
        _write_json(
            run_dir / "run.json",
            info | {"status": "done", "finished_at": utc_now(), **result.to_json()},
        )
        # Checkpoints only serve a resume; the registered version holds the adapter now.
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        return result
    except BaseException as error:
        _write_json(
            run_dir / "run.json",
            info
            | {
                "status": "failed",
                "finished_at": utc_now(),
                "error": f"{type(error).__name__}: {error}",
            },
        )
        raise


def judged(metrics: dict[str, dict], arm: str, with_sources: bool) -> dict:
    """What promotion compares for an arm: its answers with retrieved sources (how
    `mem ask --adapter` answers) when with_sources, else closed-book; its losses either way
    (a RAG arm has none), so a tie still goes to validation loss."""
    if not with_sources:
        return metrics[arm]
    answers = {k: v for k, v in metrics[f"{arm}+rag"].items() if k in ANSWER_METRICS}
    return metrics[arm] | answers


def _control(settings: DistillSettings) -> list:
    from mem.adapters.control import control_questions

    if settings.lora.control_set == "none":
        return []
    return control_questions(settings.lora.control_set or None)


def _comparable_current(registry: Registry, base_model: str):
    """The current version, if it was trained on the same base model (else compare with base)."""
    try:
        current = registry.get("current")
    except RegistryError:
        return None
    return current if current.manifest.get("base_model") == base_model else None


_COLOURS = {"base": "tab:gray", "adapter": "tab:blue", "current": "tab:green"}


def _plot_eval(run_dir: Path, metrics: dict) -> Path | None:
    """eval.png: the answer metrics and validation loss of each arm, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(metrics)
    names = [
        m
        for m in ("token_f1", "exact_match", "recall", "val_loss", "control_recall")
        if any(metrics[a].get(m) is not None for a in arms)
    ]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
    axes = axes if len(names) > 1 else [axes]
    for ax, metric in zip(axes, names, strict=True):
        values = [metrics[a].get(metric) or 0.0 for a in arms]
        colours = [_COLOURS.get(a.removesuffix("+rag"), "tab:purple") for a in arms]
        for bar, arm in zip(ax.bar(arms, values, color=colours), arms, strict=True):
            if arm.endswith("+rag"):
                bar.set_hatch("//")  # same model as its closed-book arm, with retrieval
        ax.set_title(metric)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(run_dir.name, fontsize=9)
    fig.tight_layout()
    path = run_dir / "eval.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _write_report(run_dir: Path, name: str, version: str, manifest: dict) -> None:
    metrics = manifest["metrics"]
    cols = [
        "val_loss",
        "perplexity",
        "token_f1",
        "exact_match",
        "recall",
        "control_f1",
        "control_recall",
        "control_loss",
    ]
    rehearsed = manifest["counts"]["rehearsal"]
    lines = [
        f"# {name}/{version}: {manifest['status']}",
        "",
        manifest["reason"],
        "",
        f"- base model: `{manifest['base_model']}`",
        f"- dataset: `{manifest['dataset']['id']}` ({manifest['counts']['train']} train, "
        f"{manifest['counts']['validation']} validation, {manifest['counts']['heldout']} held-out)"
        + (
            f", trained with {rehearsed} rehearsal examples (the base's own answers to general "
            "prompts)"
            if rehearsed
            else ""
        ),
        f"- training: {manifest['training']['steps']} steps, loss "
        f"{manifest['training']['first_loss']} → {manifest['training']['last_loss']}, "
        f"{manifest['training']['seconds']} s on {manifest['training']['device']}",
        "",
        "| arm | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for arm, values in metrics.items():
        cells = ["" if values.get(c) is None else str(values.get(c)) for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    by_language = {
        arm: values["control_recall_by_language"]
        for arm, values in metrics.items()
        if values.get("control_recall_by_language")
    }
    if by_language:
        lines += ["", "control_recall by the question's language:", ""]
        lines += [
            f"- {arm}: " + ", ".join(f"{lang} {value}" for lang, value in values.items())
            for arm, values in by_language.items()
        ]
    lines += ["", "![training](training.png)", "", "![evaluation](eval.png)", ""]
    samples = metrics.get("adapter", {}).get("samples", [])
    if samples:
        lines += ["## Sample answers (adapter, closed-book)", ""]
        for s in samples:
            lines.append(
                f"- **Q:** {s['question']}  \n  **gold:** {s['gold']}  \n  **got:** {s['answer']}"
            )
    (run_dir / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_for_inference(
    home: Path,
    version: str = "current",
    name: str = CORE,
    domains: tuple[str, ...] = (),
    allow_downloads: bool = False,
    models_dir: Path | None = None,
    dtype: str = "float32",
):
    """(model, tokenizer): the base model (in `dtype`) with a registered adapter on it, ready
    to generate.

    domains: further adapter names (e.g. "sport") whose current versions are stacked on the
    core one — peft applies several active LoRAs by summing their updates.
    """
    from peft import PeftModel

    from mem.adapters.base_model import converted_dir, load_base

    root = Path(home) / "adapters"
    chosen = Registry(root, name).get(version)
    base = chosen.manifest["base_model"]
    model, tokenizer = load_base(base, models_dir or converted_dir(), allow_downloads, dtype=dtype)
    model = PeftModel.from_pretrained(model, str(chosen.path), adapter_name=name)
    active = [name]
    for domain in domains:
        extra = Registry(root, domain).get("current")
        if extra.manifest.get("base_model") != base:
            raise RegistryError(
                f"{extra.label} was trained on another base model than {chosen.label}"
            )
        model.load_adapter(str(extra.path), adapter_name=domain)
        active.append(domain)
    if len(active) > 1:
        model.base_model.set_adapter(active)
    model.eval()
    unfreeze_cpu_weights(model)  # peft froze it: slower and a copy of the weights in bf16
    model.mem_adapter = ", ".join(
        [chosen.label, *(Registry(root, d).get("current").label for d in domains)]
    )
    return model, tokenizer
