"""``load_model`` keeps float32 unless asked otherwise, whatever dtype the checkpoint has."""

import torch

from lensbook import load_model


def test_float16_checkpoint_loads_as_float32_by_default_and_as_stored_with_auto(tmp_path):
    model, tokenizer = load_model("lensbook-tiny")
    model.half().save_pretrained(tmp_path)  # as Pythia and OPT are stored on the Hub
    tokenizer.save_pretrained(tmp_path)
    assert load_model(str(tmp_path))[0].dtype == torch.float32
    assert load_model(str(tmp_path), dtype="auto")[0].dtype == torch.float16
    assert load_model(str(tmp_path), dtype="bfloat16")[0].dtype == torch.bfloat16
