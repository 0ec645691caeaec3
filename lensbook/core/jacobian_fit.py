"""Estimate a Jacobian lens: ``J_l = E[∂h_final / ∂h_l]`` by autograd, prompt by prompt.

The definition follows the official package (Gurnee et al. 2026, as TransformerLens
documents it): for one prompt, ``V`` is its set of *valid* positions, every position
but the first ``skip_first`` (attention sinks, whose residual statistics are atypical)
and the last (which has no next token). The gradient at a source position ``s`` is
summed over the valid target positions ``t`` (only ``t >= s`` contribute in a causal
model), averaged over the valid source positions, and every prompt counts equally::

    J_l = mean_prompts  mean_{s in V}  sum_{t in V}  ∂h_final[t] / ∂h_l[s]     (d × d)

``h_final`` is the residual stream that enters the final norm (the input of the head
that :class:`~lensbook.core.head.Unembed` copies). Row ``k`` of ``sum_t ∂h_final[t]/∂h_l``
is one vector-Jacobian product with ``e_k``; rows are computed in chunks as a batch
(``is_grads_batched``), all layers from one backward pass.

Example:
    >>> lens = fit_jacobian_lens(model, ids, max_prompts=200)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.metadata
import time
import warnings
from collections.abc import Iterable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from lensbook.core.jacobian import JacobianLens
from lensbook.core.model import num_layers
from lensbook.core.parts import find_parts

# Defaults of the published fits (REFERENCE §10): at most 1,000 prompts, stop once J
# moves by less than 0.2 % (relative Frobenius norm) between two checks.
MAX_PROMPTS = 1000
TOLERANCE = 0.002
CHECK_EVERY = 10
# Leading positions left out of the average, as in the official fits.
SKIP_FIRST = 16
# Activation memory one pass of the fit may hold: the prompt runs as a batch of copies,
# as many as fit (at most d, at least 1). Bigger passes run faster on the CPU.
PASS_BYTES = 512 * 2**20
# Memory a pass holds per token and layer, in units of d values: the activations a block
# keeps for its backward pass and the gradients. Measured: Pythia-70M, 40-token prompt,
# 78 copies, 812 MiB above the model.
SAVED_PER_TOKEN = 21


def fit_jacobian_lens(
    model: PreTrainedModel,
    prompts: torch.Tensor | Sequence[torch.Tensor],
    *,
    max_prompts: int = MAX_PROMPTS,
    tol: float | None = TOLERANCE,
    check_every: int = CHECK_EVERY,
    skip_first: int = SKIP_FIRST,
    data: str | None = None,
    progress: bool = True,
    pass_mb: float | None = None,
) -> JacobianLens:
    """Fit a :class:`JacobianLens` for ``model`` on ``prompts``.

    Args:
        model: The causal LM (eval mode; its weights are not changed).
        prompts: Token ids: a ``(n, seq)`` tensor or a sequence of 1-D tensors (one
            prompt each, any length; no padding is needed).
        max_prompts: Prompt budget.
        tol: Early stop once the relative change of ``J`` (largest over layers, in
            Frobenius norm) between two checks ``check_every`` prompts apart is below
            ``tol``; ``None`` uses the whole budget.
        check_every: Prompts between two checks of the change of ``J``.
        skip_first: Leading positions of each prompt left out of sources and targets.
            Prompts with no valid position (``seq <= skip_first + 1``) are skipped
            with a warning and not counted.
        data: A note on where the prompts came from, kept in the lens's provenance.
        progress: Show a tqdm progress bar.
        pass_mb: MiB of activations one backward pass may hold (default
            ``PASS_BYTES``, 512 MiB): less memory, more passes, the same ``J``.

    Returns:
        The fitted lens; ``lens.config.training`` records prompts, tokens, dtype,
        seconds, the last relative change and library versions.
    """
    start = time.perf_counter()
    lens = JacobianLens.from_model(model)
    total = torch.zeros_like(lens.J, dtype=torch.float64)
    n_prompts = n_tokens = 0
    change, previous = float("nan"), None
    prompts = list(prompts)[:max_prompts]
    budget = None if pass_mb is None else int(pass_mb * 2**20)
    bar = tqdm(prompts, desc="Jacobian lens", unit="prompt", disable=not progress)
    stopped = False
    for ids in bar:
        if ids.numel() <= skip_first + 1:
            warnings.warn(f"skipping a prompt of {ids.numel()} tokens (needs more than "
                          f"skip_first + 1 = {skip_first + 1})", stacklevel=2)
            continue
        total += prompt_jacobians(model, ids, skip_first, budget).to(total.device)
        n_prompts, n_tokens = n_prompts + 1, n_tokens + ids.numel()
        if n_prompts % check_every == 0:
            current = total / n_prompts
            if previous is not None:
                change = relative_change(current, previous)
                bar.set_postfix(change=f"{change:.4f}")
                stopped = tol is not None and change < tol
                if stopped:
                    break
            previous = current
    if n_prompts == 0:
        raise ValueError(f"no prompt is longer than skip_first + 1 = {skip_first + 1} tokens")
    lens.J.copy_(total / n_prompts)
    lens.config.n_prompts = n_prompts
    lens.config.training = {
        "data": data, "n_prompts": n_prompts, "tokens": n_tokens,
        "seconds": round(time.perf_counter() - start, 2),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "relative_change": None if change != change else change,
        "stopped_early": stopped, "tolerance": tol, "skip_first": skip_first,
        "versions": library_versions(),
    }
    return lens


def prompt_jacobians(model: PreTrainedModel, ids: torch.Tensor,
                     skip_first: int = SKIP_FIRST, budget: int | None = None) -> torch.Tensor:
    """``mean_{s in V} sum_{t in V} ∂h_final[t] / ∂h_l[s]`` for one prompt, every layer.

    Rows of ``J`` are found :func:`rows_per_pass` at a time: the prompt runs as a batch of
    that many copies and copy ``b``'s backward pass seeds row ``b``. Plain batched kernels,
    where ``autograd.grad(is_grads_batched=True)`` fell back to a loop per row for
    layer norm, GELU and attention (4–7× slower on the CPU).

    Args:
        model: The causal LM.
        ids: One prompt's token ids, shape ``(seq,)`` or ``(1, seq)``.
        skip_first: Leading positions left out of ``V`` (the last one always is).
        budget: Bytes of activations per pass (:func:`rows_per_pass`).

    Returns:
        ``(layers, d, d)`` in float64.
    """
    ids = ids.reshape(1, -1).to(model.device)
    valid = slice(skip_first, ids.shape[1] - 1)
    eye = torch.eye(model.config.get_text_config().hidden_size, device=model.device)
    rows = rows_per_pass(model, ids.shape[1], budget)
    return torch.cat([_row_block(model, ids, block, valid) for block in eye.split(rows)], dim=1)


def rows_per_pass(model: PreTrainedModel, seq: int, budget: int | None = None) -> int:
    """Rows of ``J`` per pass: the copies of a ``seq``-token prompt that fit ``budget`` bytes.

    ``budget`` defaults to ``PASS_BYTES``; the answer is at least 1 and at most d.
    """
    budget = PASS_BYTES if budget is None else budget
    hidden = model.config.get_text_config().hidden_size
    itemsize = next(model.parameters()).element_size()
    per_copy = seq * hidden * num_layers(model) * SAVED_PER_TOKEN * itemsize
    return max(1, min(hidden, budget // per_copy))


def _row_block(model: PreTrainedModel, ids: torch.Tensor, block: torch.Tensor,
               valid: slice) -> torch.Tensor:
    """Rows ``block`` of every layer's J, averaged over valid sources: ``(L, rows, d)``."""
    with torch.enable_grad():
        sources, h_final = _forward_with_graph(model, ids.expand(block.shape[0], -1))
        output = h_final[:, valid].sum(dim=1)  # copy b, summed over valid targets: (rows, d)
        grads = torch.autograd.grad(output, sources, grad_outputs=block.to(output.dtype),
                                    allow_unused=True)
    return torch.stack([
        torch.zeros(block.shape[0], block.shape[1], dtype=torch.float64)
        if g is None else g[:, valid].double().mean(dim=1).cpu()
        for g in grads
    ])


def _forward_with_graph(model: PreTrainedModel, ids: torch.Tensor):
    """One forward pass that keeps the graph: ``(h_0 .. h_{L-1}, h_final)``.

    The embeddings are made to require a gradient, so the model's own weights need
    not (and are not touched); ``h_final`` is caught on its way into the head.
    """
    parts = find_parts(model)
    head_entry = parts.final_norm or parts.project_out
    caught = []
    handle = None
    if head_entry is not None:
        handle = head_entry.register_forward_pre_hook(lambda _, args: caught.append(args[0]))
    try:
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        out = model.base_model(inputs_embeds=embeds, output_hidden_states=True)
    finally:
        if handle is not None:
            handle.remove()
    hidden = out.hidden_states
    h_final = caught[-1] if caught else hidden[-1]
    return hidden[: num_layers(model)], h_final


def relative_change(current: torch.Tensor, previous: torch.Tensor) -> float:
    """Largest over layers of ``‖J - J_prev‖ / ‖J‖`` (Frobenius)."""
    diff = torch.linalg.matrix_norm(current - previous)
    return float((diff / torch.linalg.matrix_norm(current).clamp_min(1e-12)).max())


def library_versions(names: Iterable[str] = ("lensbook", "torch", "transformers")) -> dict:
    """Installed versions of the libraries a fit depends on."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
