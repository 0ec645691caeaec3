"""The paper's own numbers as the package ships them (lensbook/paper_data)."""

import tomllib
from pathlib import Path

import pytest

from lensbook.analysis.authors import (
    AUTHORS_VALUES,
    authors_curves,
    authors_model_loss,
    authors_table1,
    paper_name,
)

# Blocks per model, from the models' configs: one row per block and lens in the data.
BLOCKS = {"GPT-2 small": 12, "GPT-2 xl": 48, "Pythia-70M (deduped)": 6,
          "Pythia-12B (deduped)": 36, "GPT-Neo-2.7B": 32, "OPT-6.7b": 32, "BLOOM-560M": 24}


def test_every_curve_has_one_row_per_block_starting_at_the_embedding():
    curves = authors_curves()
    for model, blocks in BLOCKS.items():
        rows = curves[curves["paper_model"] == model]
        for _, curve in rows.groupby(["lens", "variant"]):
            assert sorted(curve["layer"]) == list(range(blocks)), model
            assert (curve["layers"] == blocks).all() and curve["depth"].max() < 1.0


def test_hub_ids_name_the_papers_models_and_keep_the_given_name():
    curves = authors_curves(["gpt2", "EleutherAI/pythia-160m-deduped"])
    assert list(dict.fromkeys(curves["model"])) == ["gpt2", "EleutherAI/pythia-160m-deduped"]
    pythia = curves[curves["model"] == "EleutherAI/pythia-160m-deduped"]
    assert set(pythia["lens"]) == {"tuned lens"}  # the data has no logit lens for Pythia
    assert paper_name("GPT2") == "GPT-2 small"
    with pytest.raises(KeyError, match="no model 'lensbook-tiny'.*GPT-2 small"):
        authors_curves(["lensbook-tiny"])


def test_the_tuned_lens_is_below_the_logit_lens_in_the_authors_gpt2_data():
    curves = authors_curves(["gpt2"]).pivot(index="layer", columns="lens", values="value")
    assert (curves["tuned lens"] <= curves["logit lens"]).all()


def test_bloom_variants_and_model_loss_are_kept_apart():
    curves = authors_curves(["bigscience/bloom-560m"], variant="without final block")
    assert set(curves["variant"]) == {"without final block"} and len(curves) == 48
    assert authors_model_loss() == [0.98, 0.96]
    with pytest.raises(KeyError, match="only BLOOM-560M"):
        authors_model_loss("gpt2")


def test_gpt_neo_extra_layer_runs_end_where_both_lenses_coincide():
    curves = authors_curves(["GPT-Neo-125M"])
    last = curves[curves["layer"] == 11].set_index("lens")["value"]
    assert last["logit lens"] == pytest.approx(last["tuned lens"], abs=0.02)


def test_table1_has_the_logit_lens_lof_collapse_on_boolq_and_sst2():
    table = authors_table1()
    assert len(table) == 9 * 5 and set(table["detector"]) == {
        "isolation forest", "LOF", "relative Mahalanobis"}
    lof = table[(table["lens"] == "logit lens") & (table["detector"] == "LOF")]
    collapsed = set(lof.loc[(lof["auroc"] - 0.5).abs() < 0.005, "task"])
    assert collapsed == {"BoolQ", "SST-2"}
    assert ((table["low"] <= table["auroc"]) & (table["auroc"] <= table["high"])).all()


def test_single_values_and_the_data_ship_with_the_package():
    assert AUTHORS_VALUES["table2_spearman"]["PIQA"] == (0.603, 0.220)
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "paper_data/*" in project["tool"]["setuptools"]["package-data"]["lensbook"]
