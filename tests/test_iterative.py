"""Iterative inference (Fig. 19) and input copying (Figs. 17/18)."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from lensbook import plotting
from lensbook.analysis import iterative
from lensbook.analysis.input_copy import input_copy_curves, input_copy_rates
from lensbook.core.block_io import block_input
from lensbook.core.parts import find_parts
from lensbook.core.trajectory import Trajectory
from tests.tiny_models import CONFIGS, make_model, sample_ids


@pytest.mark.parametrize("family", ["gpt2", "llama", "opt"])  # exact in fp64
def test_recorded_gradient_is_the_loss_gradient_at_the_block_input(family):
    model, ids = make_model(family).double(), sample_ids(batch=2, seq=9)  # exact enough
    blocks = find_parts(model).layers
    with iterative._stream_gradients(model), iterative._recording(blocks) as pairs:
        iterative._loss(model, ids).backward()
    layer = 1
    grad = pairs[layer][0].grad
    direction = torch.randn(grad.shape, generator=torch.Generator().manual_seed(0))
    eps = 1e-4

    def shifted_loss(sign: float) -> float:
        def hook(module, args, kwargs):
            h = block_input(args, kwargs) + sign * eps * direction
            return ((h, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": h})
        handle = blocks[layer].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            with torch.no_grad():
                return iterative._loss(model, ids).item()
        finally:
            handle.remove()

    direction = direction.double()
    numeric = (shifted_loss(1.0) - shifted_loss(-1.0)) / (2 * eps)
    assert numeric == pytest.approx((grad.double() * direction).sum().item(), rel=1e-3)
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_update_alignment_and_deletion_run_on_every_architecture(family):
    model, ids = make_model(family), sample_ids(batch=2, seq=6)
    cells = iterative.update_alignment(model, ids)
    assert len(cells) == 3 * 2 * 5 and cells["cosine"].notna().all()
    assert len(iterative.layer_deletion(model, ids)) == 3


def test_update_alignment_is_the_cosine_of_update_and_gradient():
    model, ids = make_model("gpt2"), sample_ids(batch=3, seq=8)
    cells = iterative.update_alignment(model, ids, batch_size=2)
    assert len(cells) == 3 * 3 * 7  # blocks x sequences x (positions but the last)
    blocks = find_parts(model).layers
    with iterative._stream_gradients(model), iterative._recording(blocks) as pairs:
        iterative._loss(model, ids[2:]).backward()
    h_in, h_out = pairs[2]
    expected = F.cosine_similarity((h_out - h_in).detach(), h_in.grad, dim=-1)[0, :-1]
    got = cells[(cells["layer"] == 2) & (cells["sequence"] == 2)].sort_values("position")
    assert torch.allclose(torch.tensor(got["cosine"].to_numpy()), expected, atol=1e-5)
    summary = iterative.alignment_summary(cells)
    assert list(summary.index) == [0, 1, 2] and summary["negative"].between(0, 1).all()


def test_deleting_a_block_equals_zeroing_its_output_projections():
    model, ids = make_model("gpt2"), sample_ids(batch=2, seq=8)
    deletion = iterative.layer_deletion(model, ids)
    with torch.no_grad():
        assert deletion.attrs["intact"] == pytest.approx(
            model(input_ids=ids, labels=ids).loss.item(), rel=1e-5)
        block = model.transformer.h[1]
        for proj in (block.attn.c_proj, block.mlp.c_proj):
            proj.weight.zero_()
            proj.bias.zero_()
        zeroed = model(input_ids=ids, labels=ids).loss.item()
    assert deletion.loc[1, "loss"] == pytest.approx(zeroed, rel=1e-5)
    assert deletion.loc[1, "increase"] == pytest.approx(zeroed - deletion.attrs["intact"])


def test_keep_interpolates_between_deleting_and_keeping_a_block():
    model, ids = make_model("gpt2"), sample_ids(batch=2, seq=8)
    deleted = iterative.layer_deletion(model, ids)
    kept = iterative.layer_deletion(model, ids, keep=1.0)
    half = iterative.layer_deletion(model, ids, keep=0.5)
    assert kept["increase"].abs().max() < 1e-5, "keeping the whole update changes nothing"
    assert half.attrs["keep"] == 0.5 and deleted.attrs["keep"] == 0.0
    assert (half["loss"] - deleted["loss"]).abs().min() > 1e-6


def test_update_alignment_at_the_output_uses_the_output_gradient():
    model, ids = make_model("gpt2"), sample_ids(batch=1, seq=8)
    cells = iterative.update_alignment(model, ids, at="output")
    blocks = find_parts(model).layers
    with iterative._stream_gradients(model), iterative._recording(blocks) as pairs:
        iterative._loss(model, ids).backward()
    h_in, h_out = pairs[0]
    expected = F.cosine_similarity((h_out - h_in).detach(), h_out.grad, dim=-1)[0, :-1]
    got = cells[cells["layer"] == 0].sort_values("position")
    assert torch.allclose(torch.tensor(got["cosine"].to_numpy()), expected, atol=1e-5)
    with pytest.raises(ValueError, match="input' or 'output"):
        iterative.update_alignment(model, ids, at="middle")


def test_plot_update_alignment_has_two_labelled_panels():
    cells = pd.DataFrame({"layer": [0, 0, 1, 1], "cosine": [-0.1, 0.2, -0.3, -0.2]})
    deletion = pd.DataFrame({"layer": [0, 1], "increase": [2.0, 0.5]})
    fig = plotting.plot_update_alignment(cells, deletion)
    assert [ax.get_xlabel() for ax in fig.axes] == ["block", "block deleted"]


def _trajectory(top: list[list[int]], inputs: list[int]) -> Trajectory:
    """A trajectory whose top-1 token at (layer, position) is ``top[layer][position]``."""
    log_probs = torch.full((len(top), len(inputs), 5), -10.0)
    for layer, row in enumerate(top):
        for pos, token in enumerate(row):
            log_probs[layer, pos, token] = 0.0
    return Trajectory(log_probs, torch.tensor(inputs), torch.tensor([*inputs[1:], -100]),
                      [str(i) for i in inputs], [str(i) for i in range(5)], "logit lens")


def test_input_copy_curves_count_top1_equal_to_the_input():
    trajs = [_trajectory([[1, 2], [3, 2], [4, 4]], [1, 2]),
             _trajectory([[0, 0], [0, 1], [2, 3]], [0, 1])]
    curves = input_copy_curves({"logit lens": trajs}, model="toy")
    assert curves["value"].tolist() == [0.75, 0.75, 0.0]  # 3 of 4, 3 of 4, none
    assert curves["layers"].tolist() == [2, 2, 2] and curves["model"].eq("toy").all()


def test_lean_input_copy_rates_equal_the_curves_of_full_trajectories():
    from lensbook.core.lens import LogitLens
    from lensbook.core.run import trajectories_from_ids

    model, ids = make_model("gpt2"), sample_ids(batch=5, seq=6)
    lenses = {"logit lens": LogitLens.from_model(model)}
    batched = input_copy_rates(model, lenses, ids, model_name="m", batch_size=2)
    whole = input_copy_curves(trajectories_from_ids(model, lenses, ids.tolist()), model="m")
    pd.testing.assert_frame_equal(batched, whole)
