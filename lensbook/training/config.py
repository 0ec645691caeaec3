"""What a tuned-lens training run does: one documented dataclass and its presets.

The defaults are the paper's (Belrose et al. 2023, §3 and Appendix), which the
reference package ``tuned-lens`` also uses: forward KL(final ‖ lens) at the same
position, SGD with Nesterov momentum 0.9 at an *effective* learning rate of 1.0,
linear decay to zero, weight decay 1e-3, one global gradient-norm clip of 1.0,
250 steps of 2^18 tokens in sequences of 2048 tokens.

Optimisers (``optimizer``) and what ``lr=None`` / ``warmup_steps=None`` mean for each:

==========  ===================================================  ==========  ==============
optimizer   what it is                                           default lr  warm-up
==========  ===================================================  ==========  ==============
``sgd``     the paper's: SGD, Nesterov momentum 0.9              1.0         none
``adam``    Adam, betas (momentum, 0.999)                        1e-3        steps // 5
``adamw``   AdamW, decoupled weight decay                        1e-3        steps // 5
``muon``    ``torch.optim.Muon`` on the translator matrices      0.1         steps // 5
            (Newton–Schulz orthogonalised Nesterov momentum,
            update scaled to AdamW's size), AdamW on the biases
==========  ===================================================  ==========  ==============

Muon's 0.1 is from a sweep on ``lensbook-tiny`` (0.003 to 0.3; ``benchmarks/muon_vs_sgd.py``,
tables in ``benchmarks/RESULTS.md``): 0.1 and 0.3 beat SGD at every layer at equal tokens.
Warm-ups are capped at 1000 steps.

Example:
    >>> config = TrainConfig.preset("quick", steps=50)
    >>> config.tokens_per_step
    8192
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Field metadata: a setting changes speed, memory or files, not the run's result, so a
# run may resume from a checkpoint with another value (see :func:`run_fields`).
SETTING = {"defines_run": False}
#: The effective learning rate that ``lr=None`` means, per optimiser (see the table above).
DEFAULT_LR = {"sgd": 1.0, "adam": 1e-3, "adamw": 1e-3, "muon": 0.1}


@dataclass
class TrainConfig:
    """Hyper-parameters and run settings of :func:`lensbook.training.loop.train_lens`.

    The command line's ``train`` options and the fields a checkpoint must match are
    derived from these fields (their docstring entries, types and metadata).

    Attributes:
        steps: Optimiser updates. Default 250, the paper's budget.
        tokens_per_step: Tokens per update, across all processes; rounded down to whole
            chunks of ``seq_len``. Default 2^18 = 262,144, the paper's.
        seq_len: Tokens per chunk; the training data must be cut to this length.
            Default 2048, the paper's.
        batch_size: Chunks per forward pass of the base model in each process; the
            rest of a step is gradient accumulation, so this changes memory, not the
            result. Default 8.
        optimizer: ``"sgd"`` (default, the paper's: Nesterov momentum), ``"adam"``,
            ``"adamw"`` or ``"muon"`` (``torch.optim.Muon`` on the translator matrices,
            AdamW on the biases, one learning rate: see
            :class:`lensbook.training.optim.MuonAdamW`; needs PyTorch 2.9+).
        lr: *Effective* learning rate. ``None`` (default) means 1.0 for SGD (the
            paper's), 1e-3 for Adam/AdamW, 0.1 for Muon (:data:`DEFAULT_LR`). For SGD,
            torch is given ``lr * (1 - momentum)``: torch's momentum buffer sums
            gradients to ``1 / (1 - momentum)`` times their size, and the reference
            package undoes that the same way, so ``lr=1.0`` here is its
            ``lr_scale=1.0`` (torch lr 0.1).
        momentum: SGD's and Muon's Nesterov momentum, or Adam's beta1. Default 0.9,
            the paper's.
        weight_decay: L2 penalty on the translators; it pulls them towards zero, that
            is towards the logit lens. Default 1e-3, the paper's.
        warmup_steps: Linear warm-up from ``lr / (warmup + 1)`` to ``lr`` before the
            linear decay to 0. ``None`` (default) means 0 for SGD (the paper's) and
            ``min(1000, steps // 5)`` for Adam/AdamW/Muon (the warm-up the reference
            documents but never applies).
        clip_grad_norm: One global gradient-norm clip over all translators, or
            ``None`` for no clipping. Default 1.0, the paper's.
        chunk_mb: MiB of fp32 full-vocabulary logits held at once. The KL is computed
            over (layer, token) blocks of this size and each block's gradient is
            back-propagated at once, so a 256k vocabulary never needs logits for a whole
            batch. ``None`` (default): cache-sized blocks on the CPU (8 MiB, at least 256
            tokens), 1 GiB on a GPU (many layers per matmul; ~1k tokens at 256k vocab).
        dtype: Compute dtype of the lens's unembedding matmuls and of the base model's
            forward (by autocast; on the CPU for bf16 only): ``"auto"`` (default) is
            bfloat16 on CUDA (float16 on GPUs without bf16, such as the T4) and on CPUs
            with native bf16 (AVX512-BF16, AMX, Arm BF16), float32 on other CPUs (see
            :mod:`lensbook.training.precision`). Softmax, KL and gradients are float32.
        seed: Seed of the order in which chunks are drawn (no chunk is used twice).
            Default 0.
        checkpoint_dir: Folder for ``last.pt`` (lens, optimiser, scheduler, step,
            history, RNG state); ``None`` (default) saves none.
        checkpoint_every: Save a checkpoint every this many steps (and after the last);
            0 (default) saves only after the last step, and only with a
            ``checkpoint_dir``.
        resume: Continue from ``checkpoint_dir/last.pt`` when it exists. Default False.
        num_threads: ``torch.set_num_threads`` for CPU runs; ``None`` (default) keeps
            torch's choice (all cores).
        progress: Show a tqdm progress bar with the per-layer loss. Default True.
    """

    steps: int = 250
    tokens_per_step: int = 2**18
    seq_len: int = 2048
    batch_size: int = field(default=8, metadata=SETTING)
    optimizer: str = field(default="sgd", metadata={"choices": OPTIMIZERS})
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-3
    warmup_steps: int | None = None
    clip_grad_norm: float | None = 1.0
    chunk_mb: float | None = field(default=None, metadata=SETTING)
    dtype: str = field(default="auto", metadata={**SETTING, "choices": DTYPES})
    seed: int = 0
    checkpoint_dir: str | None = field(default=None, metadata=SETTING)
    checkpoint_every: int = field(default=0, metadata=SETTING)
    resume: bool = field(default=False, metadata=SETTING)
    num_threads: int | None = field(default=None, metadata=SETTING)
    progress: bool = field(default=True, metadata=SETTING)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, not {self.dtype!r}")
        if self.tokens_per_step < self.seq_len:
            raise ValueError(
                f"tokens_per_step={self.tokens_per_step} is less than one chunk of "
                f"seq_len={self.seq_len}"
            )
        if min(self.steps, self.batch_size, self.seq_len) < 1:
            raise ValueError("steps, batch_size and seq_len must be positive")

    @property
    def chunks_per_step(self) -> int:
        """Chunks of ``seq_len`` tokens per optimiser update (all processes together)."""
        return self.tokens_per_step // self.seq_len

    @property
    def tokens_needed(self) -> int:
        """Tokens the whole run reads: ``steps * chunks_per_step * seq_len``."""
        return self.steps * self.chunks_per_step * self.seq_len

    @property
    def effective_lr(self) -> float:
        """The learning rate actually meant: ``lr`` or the optimiser's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def effective_warmup(self) -> int:
        """Warm-up steps actually used: ``warmup_steps`` or the optimiser's default."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return 0 if self.optimizer == "sgd" else min(1000, self.steps // 5)

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named preset (see :data:`PRESETS`) with some fields replaced."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


def run_fields() -> list[str]:
    """The fields that define a run: a checkpoint resumes only when they all match."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("defines_run", True)]


def field_help() -> dict[str, str]:
    """Each field's entry in :class:`TrainConfig`'s docstring, as one line of text."""
    doc = TrainConfig.__doc__.split("Attributes:", 1)[1]
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    helps: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        head, _, rest = line.strip().partition(": ")
        if head in names and line.startswith(" " * 8) and not line.startswith(" " * 12):
            current = head
            helps[current] = [rest]
        elif current and line.strip():
            helps[current].append(line.strip())
    return {name: " ".join(words) for name, words in helps.items()}


#: ``paper``: the paper's budget (65.5M tokens). ``quick``: a useful lens in minutes:
#: about 2 minutes for ``lensbook-tiny`` on 2 CPU cores, and well under 10 minutes
#: for a ~160M-parameter model on a free Colab T4 (1.2M tokens).
PRESETS = {
    "paper": TrainConfig(),
    "quick": TrainConfig(steps=150, tokens_per_step=2**12, seq_len=256, batch_size=8),
}
