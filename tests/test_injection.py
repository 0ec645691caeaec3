"""Few-shot tasks and prompt injections: reproducible, paired, length-matched."""

import pytest
from transformers import AutoTokenizer

from lensbook.analysis.injection import INJECTIONS, NEUTRAL, TASKS, Task, get_task, make_prompts
from lensbook.embedded.families import EMBEDDED_MODELS

FEATURE_WINDOW = 4  # the notebook's POSITIONS: features must come from the query alone


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return AutoTokenizer.from_pretrained(EMBEDDED_MODELS["lensbook-tiny"])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_same_prompts_other_seed_other_prompts(task):
    assert make_prompts(task, 6, seed=3) == make_prompts(task, 6, seed=3)
    assert make_prompts(task, 6, seed=3) != make_prompts(task, 6, seed=4)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_only_injected_prompts_carry_the_injection(task):
    for pair in make_prompts(task, 20, seed=0):
        assert pair.injection in INJECTIONS
        assert pair.injection in pair.injected
        assert not any(line in pair.clean for line in INJECTIONS)
        assert not any(line in pair.injected for line in NEUTRAL)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_clean_and_injected_differ_only_in_the_inserted_line(task):
    for pair in make_prompts(task, 20, seed=1):
        neutral = NEUTRAL[INJECTIONS.index(pair.injection)]
        assert pair.injected.replace(pair.injection, neutral) == pair.clean
        # The line comes right before the query, after every demonstration.
        assert pair.injected.split(pair.injection)[1] == pair.clean.split(neutral)[1]


@pytest.mark.parametrize("shots", [1, 3, 5])
def test_prompt_is_shots_demonstrations_then_the_query(shots):
    task = TASKS["upper"]
    for pair in make_prompts(task, 10, seed=2, shots=shots):
        assert pair.clean.count(">>> '") == shots + 1
        query = pair.clean.rsplit(">>> ", 1)[1]
        x = query.split("'")[1]
        assert (x, pair.answer) in task.pairs
        assert pair.answer == x.upper()
        assert f"'{x}'.upper()\n'{x.upper()}'" not in pair.clean  # the query is not a demo


def test_templates_render_demo_and_query():
    task = Task("t", "test", "f({x}) = {y}\n", (("1", "2"),))
    assert task.demo("1", "2") == "f(1) = 2\n"
    assert task.query("1") == "f(1) ="  # trailing space dropped: it belongs to the answer


def test_injections_and_neutral_lines_have_equal_token_counts(tiny_tokenizer):
    assert len(INJECTIONS) == len(NEUTRAL)
    for bad, good in zip(INJECTIONS, NEUTRAL, strict=True):
        assert len(tiny_tokenizer(bad).input_ids) == len(tiny_tokenizer(good).input_ids)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_clean_and_injected_prompts_tokenize_to_the_same_length(task, tiny_tokenizer):
    for pair in make_prompts(task, 10, seed=0):
        clean, injected = tiny_tokenizer([pair.clean, pair.injected]).input_ids
        assert len(clean) == len(injected)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_query_is_longer_than_the_feature_window(task, tiny_tokenizer):
    for x, _ in TASKS[task].pairs:
        assert len(tiny_tokenizer(TASKS[task].query(x)).input_ids) >= FEATURE_WINDOW


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        make_prompts("nope", 3)
    with pytest.raises(ValueError, match="n >= 1"):
        make_prompts("len", 0)
    with pytest.raises(ValueError, match="shots >= 1"):
        make_prompts("len", 3, shots=0)
    with pytest.raises(ValueError, match="at most"):
        make_prompts("len", 3, shots=len(TASKS["len"].pairs))


def test_get_task_passes_a_task_through():
    assert get_task(TASKS["type"]) is TASKS["type"]
    assert get_task("type") is TASKS["type"]
