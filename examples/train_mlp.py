"""Does normalization pay? A small MLP on scikit-learn's breast_cancer data, three ways.

The same network (30 -> 64 -> 32 -> 1, ReLU), the same initial weights, the same batches
(fixed seeds) and the same budget (``--epochs`` of Adam at ``--lr``) are trained

* ``raw``: on the raw features (their scales range from 1e-3 to 4e3);
* ``normalization``: with ``normcore.torch.Normalization.from_artifact`` first, the
  artifact fitted (``zscore``) on the training split only, as ``normcore fit`` would;
* ``layernorm``: on the raw features with ``normcore.torch.LayerNorm`` between the layers.

It writes ``loss_curves.png`` (training and test loss per epoch), ``results.md`` and
``results.json`` into ``--out``: per variant the final test error (misclassified share)
and test loss, the error reduction in percent against ``raw`` (the seeds' "error
reduction %" KPI), and the first epoch whose training loss reaches ``--target-loss``.

Usage: ``python examples/train_mlp.py [--epochs 60] [--out examples/output]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn

import normcore
from normcore.torch import LayerNorm, Normalization

VARIANTS = ("raw", "normalization", "layernorm")


def split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """breast_cancer as (x_train, y_train, x_test, y_test), 80 / 20, shuffled with ``seed``."""
    data = load_breast_cancer()
    order = np.random.default_rng(seed).permutation(len(data.target))
    cut = int(0.8 * order.size)
    x, y = data.data[order], data.target[order].astype(np.float64)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def network(variant: str, x_train: np.ndarray, seed: int) -> nn.Module:
    """The MLP of ``variant``; its linear layers start from the same weights in every variant."""
    torch.manual_seed(seed)
    width = x_train.shape[1]
    layers = [nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)]
    if variant == "layernorm":
        layers = [layers[0], LayerNorm(64, backend="torch"), layers[1], layers[2], LayerNorm(32, backend="torch"),
                  layers[3], layers[4]]  # fmt: skip
    if variant == "normalization":
        names = [f"x{i}" for i in range(width)]
        artifact = normcore.fit(x_train, features=names)  # zscore of the training split
        layers = [Normalization.from_artifact(artifact), *layers]
    return nn.Sequential(*layers).double()


def train(
    variant: str, data: tuple[np.ndarray, ...], epochs: int, lr: float, batch_size: int, seed: int
) -> dict[str, list[float]]:
    """Train one variant; per epoch the training loss and the test loss and error."""
    x_train, y_train, x_test, y_test = (torch.tensor(a) for a in data)
    model = network(variant, data[0], seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "test_error": []}
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x_train[rows]).squeeze(-1), y_train[rows]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            history["train_loss"].append(float(loss_fn(model(x_train).squeeze(-1), y_train)))
            logits = model(x_test).squeeze(-1)
            history["test_loss"].append(float(loss_fn(logits, y_test)))
            history["test_error"].append(float(((logits > 0).double() != y_test).double().mean()))
    return history


def summarize(histories: dict[str, dict[str, list[float]]], target_loss: float) -> dict[str, dict[str, float | None]]:
    """Final test error and loss, error reduction % against ``raw``, epochs to ``target_loss``."""
    raw_error = histories["raw"]["test_error"][-1]
    summary = {}
    for variant, history in histories.items():
        error = history["test_error"][-1]
        reached = [epoch for epoch, loss in enumerate(history["train_loss"], start=1) if loss <= target_loss]
        summary[variant] = {
            "test_error": error,
            "test_loss": history["test_loss"][-1],
            "error_reduction_pct": None if raw_error == 0 else 100.0 * (raw_error - error) / raw_error,
            "epochs_to_target": reached[0] if reached else None,
        }
    return summary


def table(summary: dict[str, dict[str, float | None]], target_loss: float) -> str:
    """``results.md``: one row per variant."""
    lines = [
        f"| variant | test error | test loss | error reduction vs raw | epochs to train loss {target_loss:g} |",
        "|---|---|---|---|---|",
    ]
    for variant, row in summary.items():
        reduction = row["error_reduction_pct"]
        reduction = "-" if variant == "raw" or reduction is None else f"{reduction:.1f} %"
        epochs = "not reached" if row["epochs_to_target"] is None else str(row["epochs_to_target"])
        error, loss = f"{100 * row['test_error']:.2f} %", f"{row['test_loss']:.4f}"
        lines.append(f"| {variant} | {error} | {loss} | {reduction} | {epochs} |")
    return "\n".join(lines) + "\n"


def plot(histories: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Training and test loss per epoch, one line per variant (log scale)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2, sharey=True)
    for ax, series, title in ((axes[0], "train_loss", "training loss"), (axes[1], "test_loss", "test loss")):
        for variant, history in histories.items():
            ax.plot(range(1, len(history[series]) + 1), history[series], label=variant)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0].set_ylabel("binary cross-entropy")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    """Train the three variants, write the curves and the table; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-loss", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output")
    args = parser.parse_args(argv)
    data = split(args.seed)
    histories = {v: train(v, data, args.epochs, args.lr, args.batch_size, args.seed) for v in VARIANTS}
    summary = summarize(histories, args.target_loss)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(histories, args.out / "loss_curves.png")
    text = table(summary, args.target_loss)
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({"summary": summary, "histories": histories}, indent=2))
    print(text, end="")
    print(f"curves: {args.out / 'loss_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
