"""Every figure fits the notebook: inline width and smallest font at the display dpi.

Jupyter shows a returned figure as a PNG at ``figure.dpi`` (100), cropped tight; a PNG
wider than the notebook's content width is scaled down, text and all. Two checks:

* every image stored in a notebook's outputs is at most ``MAX_WIDTH_PX`` wide (read
  from the PNG header), so the figures a reader sees now fit;
* every plotting function, drawn on large inputs (40 tokens, 24 layers, many panels),
  renders at most ``MAX_WIDTH_PX`` wide at ``DISPLAY_DPI`` with no visible text under
  ``MIN_FONT`` points, so the figures a reader makes later fit too.
"""

import base64
import io
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.text import Text

from lensbook import Trajectory
from lensbook import plotting as P
from lensbook.plotting.layout import DISPLAY_DPI, MAX_WIDTH_PX, MIN_FONT

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
LAYERS, TOKENS, VOCAB = 24, 40, 64


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def stored_images():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for i, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    yield pytest.param(png, id=f"{path.stem[:2]}-cell{i}")


@pytest.mark.parametrize("png", list(stored_images()))
def test_stored_notebook_images_fit_the_notebook(png):
    width, _ = png_size(base64.b64decode(png))
    assert width <= MAX_WIDTH_PX, f"{width} px wide: inline it shrinks to fit, text and all"


def fake_trajectory(label: str = "logit lens") -> Trajectory:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(LAYERS + 1, TOKENS, VOCAB, generator=gen) * 3
    ids = torch.randint(0, VOCAB, (TOKENS,), generator=gen)
    targets = torch.cat([ids[1:], torch.tensor([-100])])
    vocab = [f"Ġtok{i}" if i % 3 else f"Ġlongtoken{i}" for i in range(VOCAB)]
    return Trajectory(logits.log_softmax(-1), ids, targets, [vocab[i] for i in ids], vocab,
                      label, byte_level=True)


def tidy(metrics=("kl", "ce", "entropy", "bias")) -> pd.DataFrame:
    return pd.DataFrame([dict(lens=lens, layer=layer, metric=m, value=1 / (layer + 1),
                              unit="bits/byte") for lens in ("logit lens", "tuned lens")
                         for m in metrics for layer in range(LAYERS + 1)])


def curves() -> pd.DataFrame:
    models = ["nano", "mini", "tiny", "small", "base"]
    return pd.DataFrame([dict(model=m, lens=lens, layer=layer, depth=layer / LAYERS,
                              value=2 + 1 / (layer + 1 + k)) for k, m in enumerate(models)
                         for lens in ("logit lens", "tuned lens") for layer in range(LAYERS + 1)])


def figures():
    traj, tuned = fake_trajectory(), fake_trajectory("tuned lens")
    square = np.random.default_rng(0).random((LAYERS, LAYERS))
    copy = pd.DataFrame([dict(case=c, lens=lens, occurrence=o, layer=layer, probability=0.1)
                         for c in ("random", "text", "names") for lens in ("logit", "tuned")
                         for o in ("first", "second") for layer in range(LAYERS + 1)])
    detection = [dict(task=f"task {t}", lens=lens, detector=d, auroc=0.8, low=0.7, high=0.9)
                 for t in range(6) for lens in ("logit", "tuned") for d in ("LOF", "iforest")]
    history = pd.DataFrame([dict(step=s, layer=layer, kl=1.0 / (s + 1)) for s in range(5)
                            for layer in range(LAYERS)])
    depth = pd.DataFrame([dict(lens=lens, group=g, depth=float(d)) for lens in ("a", "b")
                          for g in ("frequent", "rare") for d in range(5)])
    alignment = pd.DataFrame([dict(layer=layer, cosine=-0.1) for layer in range(LAYERS)])
    deletion = pd.DataFrame([dict(layer=layer, increase=0.1) for layer in range(LAYERS)])
    fewshot = pd.DataFrame([dict(lens=lens, layer=layer, demos=d, accuracy=0.6, chance=0.5)
                            for lens in ("logit lens", "tuned lens") for d in ("true", "false")
                            for layer in range(LAYERS + 1)])
    sizes = ["nano", "mini", "tiny", "small", "base"]
    return {
        "trajectory": lambda: P.plot_trajectory(traj, "cross_entropy"),
        "lens comparison (Fig. 1)": lambda: P.plot_lens_comparison([traj, tuned], "kl"),
        "layer metrics": lambda: P.plot_layer_metrics(tidy()),
        "models by layer (Fig. 5)": lambda: P.plot_models_by_layer(
            curves(), sizes=["nano", "mini", "tiny", "small", "base"]),
        "copy curves": lambda: P.plot_copy_curves(copy),
        "prediction depth (Fig. 12)": lambda: P.plot_prediction_depth(traj),
        "top k": lambda: P.plot_top_k(traj, LAYERS, 3, k=20),
        "depth by group": lambda: P.plot_depth_by_group(depth),
        "detection": lambda: P.plot_detection(detection),
        "update alignment": lambda: P.plot_update_alignment(alignment, deletion),
        "transfer matrix": lambda: P.plot_transfer_matrix(square),
        "layer similarity": lambda: P.plot_layer_similarity(square),
        "training history": lambda: P.plot_training_history(history),
        "few-shot accuracy (Fig. 11)": lambda: P.plot_fewshot_accuracy(fewshot),
        "final block (Fig. 4)": lambda: P.plot_final_block(pd.DataFrame(
            [dict(lens=lens, variant=v, layer=layer, value=50.0 / (layer + 1))
             for lens in ("logit lens", "tuned lens")
             for v in ("without final block", "with final block") for layer in range(24)]),
            1.0, title="BLOOM-560M (the authors' data)"),
        "depth by step learned (Table 2)": lambda: P.plot_depth_by_learned(
            pd.DataFrame({"learned": [10, 20, 30, 30] * 5, "logit lens": [1, 2, 3, 4] * 5,
                          "tuned lens": [0, 1, 2, 2] * 5}),
            pd.Series({"logit lens": 0.42, "tuned lens": 0.34})),
        "authors' curves alone": lambda: P.plot_authors_curves(
            curves().assign(model=lambda f: "EleutherAI/" + f["model"]),
            sizes=[f"EleutherAI/{m}" for m in sizes]),
    }


@pytest.mark.parametrize("name", list(figures()))
def test_figures_fit_the_notebook_at_the_display_dpi(name):
    fig = figures()[name]()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DISPLAY_DPI, bbox_inches="tight")  # as inline
    width, _ = png_size(buffer.getvalue())
    assert width <= MAX_WIDTH_PX, f"{name}: {width} px wide at {DISPLAY_DPI} dpi"
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    smallest = min(texts, key=Text.get_fontsize)
    assert smallest.get_fontsize() >= MIN_FONT, (
        f"{name}: {smallest.get_text()!r} at {smallest.get_fontsize():.1f} pt")
