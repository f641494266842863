"""`rag adapt`: fine-tune the encoder on pairs mined from one library (opt-in; see README, "Library-adapted
embeddings"). Progress (pairs/s) and logs on stderr; the base vs adapted figures on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import JsonFlag, fail, setup_logging


def adapt(
    library: Annotated[Path, typer.Argument(help="Pattern library folder to adapt the encoder to.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (replaced atomically when it is an adapted model).")],
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Most epochs; stops early when the validation score stops rising.")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="Pairs per step (in-batch negatives).")] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the held-out split, the pair sample and the training.")] = 0,
    max_pairs: Annotated[
        int | None, typer.Option("--max-pairs", min=1, help="Train on a seeded sample of at most this many pairs.")
    ] = None,
    learning_rate: Annotated[float, typer.Option("--learning-rate", min=0.0, help="AdamW learning rate.")] = 2e-5,
    force: Annotated[
        bool, typer.Option("--force", help="Write the model even when it is worse than the base on the held-out patterns.")
    ] = False,
    hold_out: Annotated[
        float, typer.Option("--hold-out", min=0.0, max=0.9, help="Share of the patterns held out of training (validation).")
    ] = 0.2,
    split_all: Annotated[
        bool,
        typer.Option(
            "--split-all",
            help="Hold out that share of every pattern, not only of those with a summary and a Problem (to cross-validate on judged "
            "queries).",
        ),
    ] = False,
    eval_files: Annotated[
        list[Path] | None, typer.Option("--eval", help="Judged queries (rag eval JSONL) to validate on too; repeatable.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune all-MiniLM-L6-v2 on this library's symptom -> remedy pairs; refuse a model worse than the base."""
    setup_logging()
    from rag.adapt.run import AdaptSettings, WorseThanBase
    from rag.adapt.run import adapt as run_adapt
    from rag.adapt.train import TrainSettings, device_name
    from rag.errors import RagError

    if not library.is_dir():
        fail(f"pattern library folder not found: {library}")
    typer.echo(f"adapting on {device_name()}" + (" (GPU)" if device_name() == "cuda" else " (no GPU found; CPU)"), err=True)
    settings = AdaptSettings(
        library=library,
        out=out,
        train=TrainSettings(epochs=epochs, batch_size=batch_size, seed=seed, learning_rate=learning_rate),
        max_pairs=max_pairs,
        force=force,
        eval_files=tuple(eval_files or ()),
        held_out_share=hold_out,
        split_all=split_all,
    )
    bar = None

    def on_step(epoch: int, done: int, total: int) -> None:
        nonlocal bar
        from tqdm import tqdm

        if bar is None or bar.desc != f"epoch {epoch}":
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=f"epoch {epoch}", unit="pair", file=sys.stderr)
        bar.update(done - bar.n)

    code = 0
    try:
        report = run_adapt(settings, on_step)
    except WorseThanBase as exc:
        code, report = 1, getattr(exc, "report", None)
        typer.echo(f"error: {exc}", err=True)
    except RagError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"interrupted; nothing written to {out}", code=130)
    finally:
        if bar is not None:
            bar.close()
    if report is not None:
        typer.echo(json.dumps(_to_dict(report), indent=2) if as_json else render(report, out))
    raise typer.Exit(code)


def _to_dict(report) -> dict:
    from dataclasses import asdict

    return asdict(report)


def render(report, out: Path) -> str:
    lines = [
        f"{report.patterns} patterns, {len(report.held_out)} held out; {sum(report.pairs.values())} training pairs "
        f"({', '.join(f'{k} {v}' for k, v in report.pairs.items())}), {report.negatives} with a hard negative",
        f"trained {report.epochs_run} epoch(s) on {report.device} in {report.seconds.get('train', 0):.0f} s "
        f"({report.pairs_per_second:.2f} pairs/s); best epoch {report.best_epoch}",
        f"{'validation':<40} {'base':>8} {'adapted':>8} {'diff':>8}",
    ]
    for name, base in report.base.items():
        for metric in ("ndcg@10", "mrr@10"):
            a = report.adapted[name][metric]
            lines.append(f"{name[-30:] + ' ' + metric:<40} {base[metric]:>8.4f} {a:>8.4f} {a - base[metric]:>+8.4f}")
    lines.append(f"written to {out}; index with `rag index LIBRARY --model {out}`" if report.written else f"nothing written to {out}")
    return "\n".join(lines)
