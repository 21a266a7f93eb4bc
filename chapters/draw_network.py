"""Draw the introduction's figure of the book's network: ``chapters/00_network.svg``.

Run ``python chapters/draw_network.py`` after changing ``cnnbook.models.seed_cnn``.
Every shape and parameter count in the figure comes from the model itself (one digit
pushed through it), never typed in; ``tests/test_introduction.py`` checks that the
introduction's text and this figure carry the numbers the model has.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from cnnbook.models import seed_cnn  # noqa: E402

OUT = Path(__file__).resolve().parent / "00_network.svg"

# The two models the chapters train: seed_cnn()'s defaults, and Chapter 7's variant.
MODELS = [
    ("The seed model, seed_cnn()", {}),
    (
        "Chapter 7's variant, seed_cnn(filters=16, kernel_size=5, padding=2)",
        dict(filters=16, kernel_size=5, padding=2),
    ),
]


def describe(model) -> list[tuple[str, tuple[int, ...], int]]:
    """``(layer label, output shape for one digit, parameter count)`` per layer."""
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    rows = [("input digit", x.shape[1:], 0)]
    for layer in model:
        x = layer.forward(x)
        name = type(layer).__name__
        if name == "Conv2d":
            f, c, kh, kw = layer.params["weight"].shape
            label = f"Conv2d\n{f} filters {kh}×{kw}\npadding {layer.padding[0]}"
        elif name == "MaxPool2d":
            label = f"MaxPool2d\n{layer.kernel_size[0]}×{layer.kernel_size[1]}"
            label += f", stride {layer.stride[0]}"
        elif name == "Linear":
            out_f, in_f = layer.params["weight"].shape
            label = f"Linear\n{in_f} → {out_f}\n(the logits)"
        else:
            label = name
        count = sum(int(p.size) for p in layer.params.values())
        rows.append((label, x.shape[1:], count))
    return rows


def shape_text(shape) -> str:
    return "×".join(str(n) for n in shape)


def draw():
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "cnnbook"})
    fig, axes = plt.subplots(2, 1, figsize=(7.8, 4.2), layout="constrained")
    for ax, (title, kwargs) in zip(axes, MODELS):
        rows = describe(seed_cnn(rng=0, **kwargs))
        total = sum(count for _, _, count in rows)
        ax.set_xlim(0, len(rows))
        ax.set_ylim(-1.05, 1.0)
        ax.set_axis_off()
        ax.set_title(f"{title}: {total:,} parameters", fontsize=10, loc="left")
        for i, (label, shape, count) in enumerate(rows):
            color = "#dde8f4" if i == 0 else ("#fde3c8" if count else "#e8e8e8")
            ax.add_patch(
                FancyBboxPatch(
                    (i + 0.08, -0.05),
                    0.84,
                    0.95,
                    boxstyle="round,pad=0.02",
                    facecolor=color,
                    edgecolor="0.3",
                )
            )
            ax.text(i + 0.5, 0.42, label, ha="center", va="center", fontsize=9)
            ax.text(
                i + 0.5,
                -0.32,
                shape_text(shape),
                ha="center",
                va="center",
                fontsize=9,
                weight="bold",
            )
            params = f"{count:,} params" if count else "no params"
            ax.text(
                i + 0.5,
                -0.72,
                params,
                ha="center",
                va="center",
                fontsize=9,
                color="0.25",
            )
            if i:
                ax.annotate(
                    "",
                    xy=(i + 0.08, 0.42),
                    xytext=(i - 0.08, 0.42),
                    arrowprops=dict(arrowstyle="->", color="0.3"),
                )
    fig.savefig(OUT, metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    draw()
    print(f"wrote {OUT}")
