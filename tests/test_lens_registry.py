"""A new lens type is one class and one registration: a low-rank translator, defined here only.

It is trained, saved, loaded, evaluated, compared across layers and plotted through the
public functions, none of which knows about it.
"""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import lensbook
from lensbook import LENS_TYPES, Lens, ReadPoint, TunedLensConfig, register_lens
from lensbook.cli import main
from tests.tiny_models import VOCAB, make_model
from tests.tiny_tokenizer import make_tokenizer

SEQ = 16


@dataclass
class LowRankConfig(TunedLensConfig):
    """A tuned lens's config plus the rank of each translator."""

    rank: int = 2
    lens_type: str = "low_rank_lens"


class LowRankLens(Lens):
    """``unembed(h + U_l V_l h + b_l)`` with ``U_l`` (d × r) zero at first, so it starts
    as the logit lens."""

    lens_type = "low_rank_lens"
    config_class = LowRankConfig
    label = "low-rank lens"

    def __init__(self, unembed, config: LowRankConfig):
        super().__init__(unembed, config.num_hidden_layers)
        self.config = config
        d, r = config.d_model, config.rank
        generator = torch.Generator().manual_seed(0)
        self.down = nn.ParameterList(
            nn.Parameter(torch.randn(r, d, generator=generator) / d**0.5)
            for _ in range(config.num_hidden_layers))
        self.up = nn.ParameterList(nn.Parameter(torch.zeros(d, r))
                                   for _ in range(config.num_hidden_layers))
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(d))
                                     for _ in range(config.num_hidden_layers))

    @classmethod
    def from_config(cls, unembed, config):
        return cls(unembed, config)

    @classmethod
    def from_model(cls, model, rank: int = 2):
        text = model.config.get_text_config()
        config = LowRankConfig(model.config.name_or_path, text.hidden_size,
                               text.num_hidden_layers, rank=rank)
        return cls(lensbook.Unembed(model), config).to(model.device)

    def transform_hidden(self, h, index):
        self._check_index(index)
        return h + (h @ self.down[index].T) @ self.up[index].T + self.bias[index]

    def state(self):
        return {k: v for k, v in self.state_dict().items() if not k.startswith("unembed.")}

    def load_state(self, state):
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("unembed.")]:
            raise RuntimeError(f"missing {missing}, unexpected {unexpected}")


@pytest.fixture(scope="module")
def registered():
    register_lens(LowRankLens)
    yield
    del LENS_TYPES[LowRankLens.lens_type]


@pytest.fixture(scope="module")
def model():
    return make_model("gpt2")


@pytest.fixture(scope="module")
def ids():
    return torch.randint(1, VOCAB, (48, SEQ), generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def trained(registered, model, ids):
    config = lensbook.TrainConfig(steps=8, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2,
                                  progress=False, lr=0.5)
    lens, history = lensbook.train_lens(model, ids[:32], config, LowRankLens.from_model(model))
    return lens, history


def test_untrained_low_rank_lens_is_the_logit_lens(registered, model, ids):
    logit = lensbook.layer_logits(model, lensbook.LogitLens.from_model(model), ids[:2])
    low_rank = lensbook.layer_logits(model, LowRankLens.from_model(model), ids[:2])
    assert torch.equal(logit, low_rank)
    assert LowRankLens.from_model(model).read_points() == [ReadPoint(i) for i in range(3)]


def test_training_lowers_the_loss_and_changes_only_the_lens(trained):
    lens, history = trained
    first, last = history.loss[0], history.loss[-1]
    assert sum(last) < sum(first)
    assert all(up.abs().max() > 0 for up in lens.up)
    assert lens.config.training["steps"] == 8
    assert not any(p.requires_grad for p in lens.unembed.parameters())


def test_save_and_load_through_the_registry(trained, model, ids, tmp_path):
    lens, _ = trained
    lensbook.save_lens(lens, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["lens_type"] == "low_rank_lens" and config["rank"] == 2
    loaded = lensbook.load_lens(tmp_path, model)
    assert type(loaded) is LowRankLens and loaded.config.rank == 2
    assert torch.equal(lensbook.layer_logits(model, loaded, ids[:2]),
                       lensbook.layer_logits(model, lens, ids[:2]))


def test_unregistered_type_is_a_clear_error(model, tmp_path):
    lens = lensbook.TunedLens.from_model(model)
    lensbook.save_lens(lens, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "lens_type": "no_such_lens"}))
    with pytest.raises(ValueError, match="unknown lens type 'no_such_lens'"):
        lensbook.load_lens(tmp_path, model)


def test_evaluate_transfer_and_plot(trained, model, ids):
    lens, _ = trained
    lenses = {"logit lens": lensbook.LogitLens.from_model(model), lens.label: lens}
    frame = lensbook.evaluate_lenses(model, lenses, ids[32:])
    kl = lensbook.pivot(frame, "kl")
    assert set(kl.columns) == set(lenses)
    assert (kl["low-rank lens"].iloc[:3] < kl["logit lens"].iloc[:3]).all()
    fig = lensbook.plotting.plot_layer_metrics(frame, ["kl", "ce"])
    assert len(fig.axes) == 2
    transfer = lensbook.transfer_matrix(model, lens, ids[32:36])
    assert set(transfer.lens) == {"low-rank lens"} and len(transfer) == 2 * 3 * 3
    grid, unit = lensbook.transfer_grid(transfer)
    assert lensbook.plotting.plot_transfer_matrix(grid, unit).axes


def test_trajectory_heatmap_and_widget(trained, model):
    lens, _ = trained
    traj = lensbook.trajectory(model, make_tokenizer(), lens, "The cat sat")
    assert traj.lens_label == "low-rank lens" and traj.log_probs.shape[0] == 4
    assert lensbook.plotting.plot_trajectory(traj, "kl").axes
    explorer = lensbook.widgets.explorer(model, make_tokenizer(), {lens.label: lens},
                                         prompt="The cat sat")
    assert explorer.trajectory.lens_label == "low-rank lens" and explorer.png


def test_cli_trains_a_registered_type(registered, tmp_path):
    model = make_model("gpt2")
    model.save_pretrained(tmp_path / "model")
    make_tokenizer().save_pretrained(tmp_path / "model")
    (tmp_path / "docs.txt").write_text("the cat sat on the mat. " * 400)
    status = main(["train", "--model", str(tmp_path / "model"), "--lens-type", "low_rank_lens",
                   "--data", str(tmp_path / "docs.txt"), "--eval-tokens", "0", "--steps", "2",
                   "--tokens-per-step", "64", "--seq-len", "16", "--batch-size", "2",
                   "--no-progress", "--output", str(tmp_path / "lens")])
    assert status == 0
    loaded = lensbook.load_lens(tmp_path / "lens", model)
    assert type(loaded) is LowRankLens
