"""The paper's own numbers, read from the data the package ships.

Belrose et al. (2023) published figures, not tables; the values behind several figures
survive in the authors' working notebooks (the paper at arXiv v1). ``lensbook/paper_data/``
holds them with their provenance (its README); this module reads them into the same
shapes lensbook's own results have, so that a notebook can draw or print both side by side:

* :func:`authors_curves`: bits/byte per layer, shaped like
  :func:`lensbook.analysis.compare.layer_curves` (Figs. 4, 5 and 14);
* :func:`authors_table1`: prompt-injection AUROCs on Pythia-12B, shaped like
  :func:`lensbook.analysis.detectors.detection_table`'s rows (Table 1);
* :data:`AUTHORS_VALUES`: single numbers quoted elsewhere (bias, transfer correlation,
  Table 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

import pandas as pd

SOURCE = "authors (v1 notebooks)"

#: Hub ids of the models the paper measured, and the names its data uses for them.
PAPER_NAMES = {
    "gpt2": "GPT-2 small",
    "openai-community/gpt2": "GPT-2 small",
    "gpt2-medium": "GPT-2 medium",
    "gpt2-large": "GPT-2 large",
    "gpt2-xl": "GPT-2 xl",
    "EleutherAI/pythia-70m-deduped": "Pythia-70M (deduped)",
    "EleutherAI/pythia-160m-deduped": "Pythia-160M (deduped)",
    "EleutherAI/pythia-1.4b-deduped": "Pythia-1.4B (deduped)",
    "EleutherAI/pythia-12b-deduped": "Pythia-12B (deduped)",
    "EleutherAI/gpt-neo-125m": "GPT-Neo-125M",
    "EleutherAI/gpt-neo-1.3B": "GPT-Neo-1.3B",
    "EleutherAI/gpt-neo-2.7B": "GPT-Neo-2.7B",
    "facebook/opt-125m": "OPT-125m",
    "facebook/opt-1.3b": "OPT-1.3b",
    "facebook/opt-6.7b": "OPT-6.7b",
    "bigscience/bloom-560m": "BLOOM-560M",
}

#: Numbers the authors' notebooks confirm beyond the two tables (see the data's README).
AUTHORS_VALUES = {
    # Bias of Pythia-160M's final distribution against Pythia-12B's, in bits.
    "bias_pythia160m_vs_12b_bits": 0.0068,
    # Transfer penalty vs covariance similarity across layers, Pythia-12B (Spearman rho).
    "transfer_vs_covariance_spearman": -0.7826,
    # Table 2: prediction depth vs the step an example is first learned (Spearman rho,
    # Pythia-12B), per task: (tuned lens, logit lens).
    "table2_spearman": {
        "PIQA": (0.603, 0.220),
        "SciQ": (0.507, 0.208),
        "WinoGrande": (0.302, 0.312),
        "ARC-Challenge": (0.537, 0.359),
        "ARC-Easy": (0.513, 0.390),
        "LogiQA": (0.271, 0.094),
    },
}

_LENS_LABELS = {"logit": "logit lens", "tuned": "tuned lens"}
_DETECTOR_LABELS = {"isolation_forest": "isolation forest", "lof": "LOF",
                    "baseline": "relative Mahalanobis"}


def _read(name: str) -> pd.DataFrame:
    with (resources.files("lensbook") / "paper_data" / name).open("r") as f:
        return pd.read_csv(f, keep_default_na=False)


def paper_name(model: str) -> str:
    """The name the paper's data uses for ``model`` (a Hub id or a paper name).

    Raises:
        KeyError: When the paper did not measure ``model``; the message lists the
            models it did measure.
    """
    if model in PAPER_NAMES.values():
        return model
    lowered = {k.lower(): v for k, v in PAPER_NAMES.items()}
    if model.lower() in lowered:
        return lowered[model.lower()]
    known = ", ".join(sorted(set(PAPER_NAMES.values())))
    raise KeyError(f"the paper's data has no model {model!r}; it has: {known}")


def authors_curves(models: Iterable[str] | None = None, *,
                   variant: str | None = None) -> pd.DataFrame:
    """The authors' bits/byte per layer, shaped like ``layer_curves``.

    Args:
        models: Hub ids or paper names (``"gpt2"``, ``"GPT-2 small"``); all models when
            ``None``. The ``model`` column keeps the name as given, so the curves line up
            with lensbook's own table of the same models.
        variant: Keep only this variant (BLOOM-560M's ``"with final block"`` /
            ``"without final block"``); all variants when ``None``.

    Returns:
        Columns ``model, paper_model, lens, variant, layer, layers, depth, value, unit,
        source``; ``lens`` is ``"logit lens"`` or ``"tuned lens"``; ``depth`` is
        ``layer / layers``, where ``layers`` is the model's number of blocks, so that 1.0
        would be the model's output (which the data does not include). The BLOOM rows of
        the model's own loss are left out (their ``layer`` numbers runs, not layers).
    """
    data = _read("authors_bits_per_byte.csv")
    data = data[data["lens"].isin(_LENS_LABELS)]
    if variant is not None:
        data = data[data["variant"] == variant]
    names = {m: paper_name(m) for m in models} if models is not None else \
        {m: m for m in dict.fromkeys(data["model"])}
    frames = []
    for given, name in names.items():
        rows = data[data["model"] == name]
        layers = rows.groupby(["lens", "variant"])["layer"].transform("count")
        frames.append(rows.assign(model=given, paper_model=name, layers=layers))
    out = pd.concat(frames, ignore_index=True)
    out = out.assign(lens=out["lens"].map(_LENS_LABELS), depth=out["layer"] / out["layers"],
                     value=out["bits_per_byte"], unit="bits/byte", source=SOURCE)
    return out[["model", "paper_model", "lens", "variant", "layer", "layers", "depth",
                "value", "unit", "source"]]


def authors_model_loss(model: str = "BLOOM-560M") -> list[float]:
    """The model's own next-token loss in bits/byte, one value per run of the authors'.

    Only BLOOM-560M has these rows (two runs), for the paper's Fig. 4.
    """
    data = _read("authors_bits_per_byte.csv")
    rows = data[(data["lens"] == "model") & (data["model"] == paper_name(model))]
    if rows.empty:
        raise KeyError(f"the paper's data has no model loss for {model!r} (only BLOOM-560M)")
    return rows["bits_per_byte"].astype(float).tolist()


def authors_table1() -> pd.DataFrame:
    """Table 1 as the authors computed it: prompt-injection AUROC on Pythia-12B.

    Returns:
        Columns ``task, lens, detector, auroc, low, high, lof_metric, source`` (the names
        :func:`lensbook.analysis.detectors.detection_table` uses); the baseline's ``lens``
        is ``"hidden states"``.
    """
    data = _read("authors_table1_auroc.csv")
    lens = data["lens"].map(_LENS_LABELS).fillna("hidden states")
    detector = data["detector"].map(_DETECTOR_LABELS)
    return pd.DataFrame({
        "task": data["task"], "lens": lens, "detector": detector,
        "auroc": data["auroc"].astype(float), "low": data["ci_low"].astype(float),
        "high": data["ci_high"].astype(float), "lof_metric": data["lof_metric"],
        "source": SOURCE,
    })
