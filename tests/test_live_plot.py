"""The live training view: called with every step's per-layer losses, it redraws in place."""

import numpy as np
import torch

from lensbook.plotting import LiveTrainingPlot
from lensbook.training.config import TrainConfig
from lensbook.training.data import TokenChunks
from lensbook.training.history import TrainHistory
from lensbook.training.loop import train_lens
from tests.tiny_models import VOCAB, make_model

SEQ, STEPS = 16, 5


class Screen:
    """Stands in for the notebook output: records what is shown and each replacement."""

    def __init__(self):
        self.frames = []

    def __call__(self, fig):
        self.frames.append(fig)
        return self

    def update(self, fig):
        self.frames.append(fig)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def history(steps, layers=3):
    losses = [[10.0 / (s + layer + 1) for layer in range(layers)] for s in range(steps)]
    return TrainHistory(loss=losses, lr=[1.0] * steps, grad_norm=[1.0] * steps,
                        seconds=[float(s) for s in range(steps)], tokens_per_step=64,
                        bits_per_byte_factor=0.5)


def lines(fig):
    """{legend label: y values} of the loss curves."""
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    return dict(zip(labels, (np.asarray(line.get_ydata()) for line in ax.get_lines()),
                    strict=False))


def test_it_is_called_with_every_steps_per_layer_losses_and_redraws_in_place():
    model = make_model("gpt2")
    ids = torch.randint(1, VOCAB, (64, SEQ), generator=torch.Generator().manual_seed(0))
    data = TokenChunks(input_ids=ids, n_tokens=ids.numel(), n_bytes=3 * ids.numel())
    config = TrainConfig(steps=STEPS, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2,
                         progress=False)
    screen, seen = Screen(), []
    live = LiveTrainingPlot(STEPS, every_s=0.0, show=screen)

    def on_step(step, history):
        seen.append((step, [list(v) for v in history.loss]))
        live(step, history)

    _, history = train_lens(model, data, config, on_step=on_step)
    layers = model.config.num_hidden_layers
    assert [step for step, _ in seen] == list(range(1, STEPS + 1))
    assert all(len(losses) == step and all(len(v) == layers for v in losses)
               for step, losses in seen)
    assert live.redraws == STEPS and len(screen.frames) == STEPS
    final = lines(screen.frames[-1])
    assert sorted(final) == [str(layer) for layer in range(layers)]
    bits = np.asarray(history.loss) * data.bits_per_byte_factor
    for layer in range(layers):  # the figure shows the run, in bits per byte
        np.testing.assert_allclose(final[str(layer)], bits[:, layer], rtol=1e-6)
    assert "bits/byte" in screen.frames[-1].axes[0].get_ylabel()
    assert f"step {STEPS} of {STEPS}" in screen.frames[-1].axes[0].get_title()


def test_it_redraws_at_most_every_few_seconds_but_always_first_and_last():
    screen, clock = Screen(), Clock()
    live = LiveTrainingPlot(10, every_s=3.0, show=screen, clock=clock)
    drawn = []
    for step in range(1, 11):
        clock.now = float(step)  # one second per step
        before = live.redraws
        live(step, history(step))
        if live.redraws > before:
            drawn.append(step)
    assert drawn == [1, 4, 7, 10]
    assert len(lines(live.figure)["0"]) == 10  # the last frame holds every step
    assert screen.frames[-1] is live.figure


def test_without_bytes_it_plots_nats_per_token():
    plain = history(2)
    plain.bits_per_byte_factor = None
    live = LiveTrainingPlot(2, show=Screen())
    live(1, plain)
    assert "nats/token" in live.figure.axes[0].get_ylabel()


def test_the_progress_bar_shows_every_layer_in_the_plots_unit(capsys):
    model = make_model("gpt2")
    ids = torch.randint(1, VOCAB, (8, SEQ), generator=torch.Generator().manual_seed(0))
    data = TokenChunks(input_ids=ids, n_tokens=ids.numel(), n_bytes=3 * ids.numel())
    config = TrainConfig(steps=1, tokens_per_step=4 * SEQ, seq_len=SEQ, batch_size=2)
    _, history = train_lens(model, data, config)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    shown = [f"{v * data.bits_per_byte_factor:.3f}" for v in history.loss[-1]]
    assert "KL (bits/byte) per layer " + " ".join(shown) in bar
