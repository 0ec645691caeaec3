"""Train a tuned lens (or a bias-only lens) on a model and fixed-length token chunks.

Each step draws ``tokens_per_step`` tokens of chunks that were never used before,
runs the base model once per micro-batch without gradients, and back-propagates
KL(final ‖ lens) of every layer through the translators only, block by block (see
:mod:`lensbook.training.objective`). Then: one global gradient-norm clip, one optimiser step,
one scheduler step, and optionally a checkpoint.

Example:
    >>> model, tokenizer = lensbook.load_model()  # doctest: +SKIP
    >>> chunks = chunk_texts(load_corpus("train"), tokenizer, seq_len=256)  # doctest: +SKIP
    >>> lens, history = train_lens(model, chunks, TrainConfig.preset("quick"))  # doctest: +SKIP
    >>> history.to_frame().groupby("layer").kl.last()  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from lensbook.core.errors import (
    CheckpointError,
    InputError,
    InsufficientDataError,
    NonFiniteLossError,
)
from lensbook.core.guards import check_ids, check_lens_fits, nonfinite_parameter
from lensbook.core.lens import Lens
from lensbook.core.memory import (
    MemoryEstimate,
    forward_bytes,
    head_copy_bytes,
    module_bytes,
    tensor_bytes,
)
from lensbook.core.model import hidden_states
from lensbook.core.tuned import TunedLens
from lensbook.training import distributed
from lensbook.training.checkpoint import (
    check_compatible,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from lensbook.training.config import TrainConfig
from lensbook.training.data import TokenChunks, bits_per_byte_of, token_ids
from lensbook.training.history import TrainHistory
from lensbook.training.objective import LOGIT_BUFFERS, KLObjective, default_chunk_mb
from lensbook.training.optim import build_optimizer, build_scheduler, compute_dtype


def check_budget(data: TokenChunks | torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """The chunks as a ``(n_chunks, seq_len)`` tensor, after checking they suffice.

    Raises:
        ValueError: The chunk length differs from ``config.seq_len``.
        InsufficientDataError: Fewer tokens than ``steps * tokens_per_step`` (both named).
    """
    ids = token_ids(data)
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"data must be TokenChunks or a (n_chunks, seq_len) tensor of ids, got "
                        f"{type(ids).__name__}: see lensbook.load_chunks")
    if ids.ndim != 2 or ids.shape[1] != config.seq_len:
        raise ValueError(
            f"the data's chunks have shape {tuple(ids.shape)}, but seq_len={config.seq_len}"
        )
    have, need, seq = ids.shape[0], config.steps * config.chunks_per_step, config.seq_len
    if have < need:
        raise InsufficientDataError(
            f"the data holds {have * seq:,} tokens ({have:,} chunks of {seq}), but "
            f"{config.steps} steps x {config.chunks_per_step * seq:,} tokens per step need "
            f"{need * seq:,} tokens ({need:,} chunks); "
            f"give more data or lower steps / tokens_per_step"
        )
    return ids


def draw_order(n_chunks: int, seed: int) -> torch.Tensor:
    """The order in which a run draws chunks: a permutation of all of them, fixed by ``seed``.

    Step ``s`` uses ``order[s * chunks_per_step:(s + 1) * chunks_per_step]``, so a run
    shorter than the data draws its chunks at random from all of it, none twice.
    """
    return torch.randperm(n_chunks, generator=torch.Generator().manual_seed(seed))


def train_lens(
    model: PreTrainedModel,
    data: TokenChunks | torch.Tensor,
    config: TrainConfig | None = None,
    lens: Lens | None = None,
    *,
    on_step: Callable[[int, TrainHistory], None] | None = None,
) -> tuple[Lens, TrainHistory]:
    """Train ``lens`` (default: a fresh ``TunedLens.from_model(model)``) on ``data``.

    Args:
        model: The base model (frozen; in ``eval()`` mode).
        data: Token chunks ``(n_chunks, seq_len)``; a ``TokenChunks`` also gives the
            bits-per-byte factor. Must hold ``steps * tokens_per_step`` tokens.
        config: Hyper-parameters (default: ``TrainConfig()``, the paper's).
        lens: The lens to train in place, of any registered type, e.g.
            ``TunedLens.from_model(model, bias_only=True)``; only
            ``lens.trainable_parameters()`` change.
        on_step: Called as ``on_step(step, history)`` after every step (1-based), e.g.
            to plot live; raising from it stops training.

    Returns:
        ``(lens, history)`` with the per-layer loss of every step.

    Raises:
        InsufficientDataError: Before any step, when the data is too short.
        InputError: A lens for another model, or one with nothing to train.
        CheckpointError: Resuming from a truncated, unsafe or foreign ``last.pt``.
        NonFiniteLossError: Naming the layer and step; the last checkpoint is kept.
    """
    config = config or TrainConfig()
    ids = check_budget(data, config)
    check_ids(model, ids)
    lens = lens if lens is not None else TunedLens.from_model(model)
    check_lens_fits(model, lens)
    if not lens.trainable_parameters():
        raise InputError(f"the {lens.label} has no trainable parameters: train a "
                         "TunedLens (or another lens type with parameters)")
    threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        run = _Run(model, lens, ids, config)
        run.history.bits_per_byte_factor = bits_per_byte_of(data)
        run.loop(on_step)
    finally:
        torch.set_num_threads(threads)
    if getattr(lens, "config", None) is not None:
        lens.config.training = _training_record(config, run.history)
    return lens, run.history


def training_memory(model: PreTrainedModel, lens: Lens, config: TrainConfig) -> MemoryEstimate:
    """What training ``lens`` holds at its peak in one process (see :mod:`lensbook.core.memory`).

    The lens's parameters count with their gradients and the optimiser's state (SGD:
    momentum; Adam: two moments); the logits blocks are ``LOGIT_BUFFERS`` blocks of
    ``chunk_mb``, whatever the batch.
    """
    head = lens.unembed
    chunk_mb = config.chunk_mb or default_chunk_mb(head.device, head.vocab_size)
    states = 1 if config.optimizer == "sgd" else 2
    return MemoryEstimate("training", {
        "model": module_bytes(model),
        "lens": tensor_bytes(lens.trainable_parameters()) * (2 + states),
        "head copies": head_copy_bytes(head, compute_dtype(config, head.device)),
        "forward batch": forward_bytes(model, config.batch_size * config.seq_len),
        "logits blocks": int(LOGIT_BUFFERS * chunk_mb * 2**20),
    })


class _Run:
    """The state of one training run (optimiser, scheduler, data order, history)."""

    def __init__(self, model, lens: Lens, ids: torch.Tensor, config: TrainConfig):
        self.model, self.lens, self.ids, self.config = model, lens, ids, config
        self.rank = distributed.current()
        self.device = lens.unembed.device
        self.params = lens.trainable_parameters()
        self.sync = distributed.GradientSync(self.params, self.rank)  # DDP across processes
        self.optimizer = build_optimizer(self.params, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.dtype = compute_dtype(config, self.device)
        self.objective = KLObjective(lens, self.dtype, config.chunk_mb)
        self.order = draw_order(len(ids), config.seed)
        self.history = TrainHistory(tokens_per_step=config.chunks_per_step * config.seq_len)
        self.start = self._resume() if config.resume and config.checkpoint_dir else 0
        if not config.resume and config.checkpoint_dir:
            _warn_overwrite(checkpoint_path(config.checkpoint_dir))
        self.clock = time.perf_counter() - (self.history.seconds or [0.0])[-1]

    def loop(self, on_step) -> None:
        bar = tqdm(total=self.config.steps, initial=self.start, desc="tuned lens",
                   disable=not (self.config.progress and self.rank.primary))
        with bar:
            for step in range(self.start, self.config.steps):
                self.step(step)
                bar.update()
                bar.set_postfix_str(self._postfix())
                if self._checkpoint_due(step + 1):
                    self.save(step + 1)
                if on_step is not None:
                    on_step(step + 1, self.history)

    def _postfix(self) -> str:
        """Every layer's KL at the last step, first layer first, in bits/byte when known."""
        factor = self.history.bits_per_byte_factor
        unit, scale = ("nats/token", 1.0) if factor is None else ("bits/byte", factor)
        return f"KL ({unit}) per layer " + " ".join(
            f"{v * scale:.3f}" for v in self.history.loss[-1])

    def step(self, step: int) -> None:
        """One optimiser update from the step's global batch (0-based ``step``)."""
        for p in self.params:
            p.grad = torch.zeros_like(p)
        sums = self._accumulate(step)
        self.sync()
        distributed.sum_across(sums, self.rank)
        losses = (sums / self.history.tokens_per_step).tolist()
        self._check_finite(losses, step + 1)
        max_norm = self.config.clip_grad_norm or float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        factor = self.scheduler.get_last_lr()[0] / self.optimizer.defaults["lr"]
        lr = self.config.effective_lr * factor
        self.optimizer.step()
        self.scheduler.step()
        self.history.loss.append(losses)
        self.history.lr.append(lr)
        self.history.grad_norm.append(float(norm))
        self.history.seconds.append(time.perf_counter() - self.clock)

    def _accumulate(self, step: int) -> torch.Tensor:
        per_step = self.config.chunks_per_step
        mine = self.rank.shard(self.order[step * per_step:(step + 1) * per_step])
        scale = 1.0 / self.history.tokens_per_step
        sums = torch.zeros(self.lens.num_points, device=self.device)
        # The base model's forward in the lens's dtype, as the reference does (CPU autocast
        # supports bf16 only): 2.8x faster on the GPT-2-small shape on a CPU with AMX.
        amp = self.dtype != torch.float32 and (self.device.type == "cuda"
                                               or self.dtype == torch.bfloat16)
        for batch in mine.split(self.config.batch_size):
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=amp):
                hs = hidden_states(self.model, self.ids[batch].to(self.model.device),
                                   points=self.lens.read_points())
            sums += self.objective.accumulate(hs.map(lambda h: h.to(self.device)), scale)
        return sums

    def _check_finite(self, losses: list[float], step: int) -> None:
        bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
        if not bad:
            return
        raise NonFiniteLossError(
            f"the loss of layer {bad[0]} is {losses[bad[0]]} at step {step} (layers with "
            f"non-finite loss: {bad}); training stopped before this update; "
            f"{self._kept_checkpoint()}; {self._likely_cause()}"
        )

    def _kept_checkpoint(self) -> str:
        """Where the last good checkpoint is, or why there is none (never a missing file)."""
        if not self.config.checkpoint_dir:
            return "no checkpoint was being saved"
        path = checkpoint_path(self.config.checkpoint_dir)
        if path.exists():
            return f"the last good checkpoint is {path}"
        return f"no checkpoint was written yet (none is at {path})"

    def _likely_cause(self) -> str:
        bad = nonfinite_parameter(self.model)
        if bad is not None:
            return f"the model's parameter {bad} holds NaN or inf: reload or repair it"
        return "lower the learning rate or enable clip_grad_norm"

    def _checkpoint_due(self, done: int) -> bool:
        every = self.config.checkpoint_every
        last = done == self.config.steps
        return bool(self.config.checkpoint_dir) and (last or (every > 0 and done % every == 0))

    def save(self, done: int) -> None:
        if not self.rank.primary:
            return
        save_checkpoint(self.config.checkpoint_dir, {
            "step": done,
            "translators": self.lens.state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history.to_dict(),
            "config": self.config.to_dict(),
            "rng": torch.get_rng_state(),
            "chunks_used": done * self.config.chunks_per_step,
            "n_chunks": len(self.ids),
        })

    def _resume(self) -> int:
        state = load_checkpoint(self.config.checkpoint_dir)
        if state is None:
            return 0
        check_compatible(state["config"], self.config.to_dict())
        if state["n_chunks"] != len(self.ids):
            raise CheckpointError(
                f"cannot resume from {checkpoint_path(self.config.checkpoint_dir)}: its data "
                f"had {state['n_chunks']} chunks, this data has {len(self.ids)}; give the same "
                "data, or move the checkpoint away to start over"
            )
        try:
            self.lens.load_state(state["translators"])
        except RuntimeError as err:
            raise CheckpointError(
                f"cannot resume from {checkpoint_path(self.config.checkpoint_dir)}: its lens "
                f"weights do not fit this {self.lens.label} ({str(err).splitlines()[0]}); "
                "resume with the same lens type, or move the checkpoint away to start over"
            ) from err
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.history = TrainHistory(**state["history"])
        return state["step"]


def _warn_overwrite(path) -> None:
    if path.exists():
        warnings.warn(f"{path} holds an earlier run's checkpoint, which this run will "
                      "overwrite: pass resume=True (--resume) to continue it, or another "
                      "checkpoint_dir to keep it", stacklevel=4)


def _training_record(config: TrainConfig, history: TrainHistory) -> dict:
    """What ``config.json`` records about how the lens was trained."""
    return {
        "objective": "KL(final || lens), same position",
        "steps": len(history),
        "tokens": len(history) * history.tokens_per_step,
        "seconds": round(history.seconds[-1], 2) if history.seconds else None,
        "config": config.to_dict(),
        "final_kl_nats": history.loss[-1] if history.loss else None,
    }
