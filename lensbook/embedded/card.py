"""Write the model card (README.md) of the embedded default model from its build record."""

from __future__ import annotations

import csv
from pathlib import Path

from lensbook.embedded.families import FAMILIES

TOKENIZER_COMPAT_PLACEHOLDER = (
    "Not yet checked for this build: run `benchmarks/check_tokenizer_compat.py` with "
    "transformers 4.57 and 5.x and record both hashes here."
)


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; ``columns`` holds (key, header, format spec) triples."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    body = ["| " + " | ".join(format(r[k], f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _corpus_section(info: dict) -> str:
    c = info["corpus"]
    return f"""## Corpus

Built by `lensbook.embedded.corpus.load_corpus` from text that every CPython install ships,
here **Python {info["python_version"]}** (the corpus changes with the Python version;
fingerprint `{c["fingerprint"]}`):

- the reference-manual sections behind `help("topic")` (`pydoc_data.topics`);
- the docstrings of {c["modules"]} standard-library modules, read with `ast`
  (no imports), each under its qualified name;
- the source files of the same modules.

Test suites, `site-packages`, generated files and packages some distributions ship
separately (Tk, IDLE, lib2to3, distutils, ensurepip, venv, encodings) are left out.
{c["test_percent"]}% of modules and topics, chosen by a hash of their name, are held out.

| split | documents | characters | tokens |
|---:|---:|---:|---:|
| train | {c["train_docs"]:,} | {c["train_chars"]:,} | {c["train_tokens"]:,} |
| test | {c["test_docs"]:,} | {c["test_chars"]:,} | {c["test_tokens"]:,} |
"""


def _budget_note(m: dict) -> str:
    if m.get("minutes") is None:
        return ""
    return (f"; the budget was {m['minutes']:g} wall-clock minutes, which also set the "
            "learning-rate schedule, so the step count depends on the machine's speed")


def _family(info: dict):
    """The family record of the model the build record describes (GPT-2 in old records)."""
    return FAMILIES[info["config"].get("family", "gpt2")]


def _model_section(info: dict) -> str:
    m, t = info["config"], info["training"]
    return f"""## Model and training

{_family(info).architecture}, trained from scratch:
{m["n_layer"]} layers, width {m["n_embd"]}, {m["n_head"]} heads, context {m["seq_len"]},
vocabulary {m["vocab_size"]} (byte-level BPE trained on the training split with the
`tokenizers` library; `<|endoftext|>` is BOS, EOS, UNK and PAD), tied embeddings,
no dropout, {info["n_params"]:,} parameters stored in fp32.

AdamW (betas {tuple(m["betas"])}, weight decay {m["weight_decay"]} on matrices), peak
learning rate {m["lr"]}, {m["warmup_steps"]} warmup steps then cosine decay to
{m["min_lr_ratio"]}× the peak, gradient clipping at {m["grad_clip"]}; batches of
{m["batch_size"]} chunks of {m["seq_len"]} tokens; seed {m["seed"]}.
**{t["steps"]:,} steps = {t["tokens"]:,} tokens in {t["minutes"]:.1f} minutes**
({t["tokens_per_second"]:,.0f} tokens/s) on {t["hardware"]}{_budget_note(m)}.

### Training curve

Train loss is the mean over the steps since the previous row; held-out loss is on the
first {m["eval_chunks"]} test chunks. Losses in nats per token.

{_table(info["curve"], [("step", "step", ","), ("tokens", "tokens", ","),
                        ("minutes", "minutes", ".1f"), ("train_loss", "train loss", ".3f"),
                        ("eval_loss", "held-out loss", ".3f")])}
"""


def _results_section(info: dict) -> str:
    rows = [{"part": k, **v} for k, v in info["eval"].items()]
    table = _table(rows, [("part", "held-out text", ""), ("tokens", "tokens", ","),
                          ("nats_per_token", "nats/token", ".3f"),
                          ("bits_per_byte", "bits/byte", ".3f")])
    samples = "\n\n".join(f"```text\n{s}\n```" for s in info["samples"])
    return f"""## Held-out loss

On the **whole test split**; bits per byte = nats per token × tokens / UTF-8 bytes / ln 2.

{table}

## Greedy samples

{samples}
"""


def _replay_note(info: dict) -> str:
    if info["config"].get("minutes") is None:
        return ""
    steps = info["training"]["steps"]
    return (f"\nThis build ran {steps:,} steps; `--steps {steps}` replays a run of the same "
            "length with the schedule fixed by steps instead of time.\n")


# Lens names in metrics.csv (as lenses label themselves) -> the card's column names; the
# shipped files, written before lenses were named by their labels, use the short names.
COLUMN_NAMES = {"logit lens": "logit", "tuned lens": "tuned"}
LENS_COMMAND = ("python -m lensbook train --model {name} --preset quick "
                "--output lensbook/assets/{name}/lens --eval-tokens 32768 --num-threads 1")


def _name(info: dict) -> str:
    return info.get("name", "lensbook-tiny")


def _lens_section(info: dict) -> str:
    """The shipped tuned lens: how it was trained and its held-out KL next to the logit lens's.

    ``info["lens_metrics"]`` holds the rows of ``lens/metrics.csv`` (written by
    ``python -m lensbook train``); without them the section says the lens is missing.
    """
    rows = info.get("lens_metrics")
    if not rows:
        return "## Tuned lens\n\nNot trained yet: run the command below to add it under `lens/`.\n"
    kl = {(COLUMN_NAMES.get(r["lens"], r["lens"]), int(r["layer"]), r["unit"]): float(r["value"])
          for r in rows if r["metric"] == "kl"}
    layers = sorted({layer for _, layer, _ in kl})
    table = [{"layer": layer,
              **{f"{lens}_{unit}": kl[(lens, layer, unit)] for lens in ("logit", "tuned")
                 for unit in ("nats/token", "bits/byte")}} for layer in layers]
    columns = [("layer", "layer", "d")] + [
        (f"{lens}_{unit}", f"{lens} KL ({unit})", ".3f")
        for lens in ("logit", "tuned") for unit in ("nats/token", "bits/byte")]
    ratio = sum(r["logit_nats/token"] / r["tuned_nats/token"] for r in table) / len(table)
    return f"""## Tuned lens

`lens/` holds a tuned lens for this model in the reference layout (`config.json`,
`params.pt`) and as `params.safetensors`, trained with lensbook's `quick` preset
(150 steps × 4,096 tokens, SGD with Nesterov momentum) on the corpus's train split.
Held-out KL(output ‖ lens) on 32,768 tokens of the test split, per layer (from
`lens/metrics.csv`); on average the tuned lens's KL is {ratio:.1f}× lower:

{_table(table, columns)}

Rebuild it with `{LENS_COMMAND.format(name=_name(info))}`.
"""


def render_card(info: dict) -> str:
    """Render the model card as Markdown from the record that ``build_default`` keeps."""
    total = info["eval"]["all"]
    return f"""---
license: mit
library_name: transformers
pipeline_tag: text-generation
---

# {_name(info)}

A {info["n_params"] / 1e6:.2f}M-parameter {_family(info).short} that
lensbook trains itself, on CPU, from text that ships with Python, so that every
notebook and test runs offline. It is small and weak (held-out loss
**{total["bits_per_byte"]:.3f} bits/byte**, {total["nats_per_token"]:.3f} nats/token)
but it is a real language model with {info["config"]["n_layer"]} layers to look into,
layer by layer.

Load it with `AutoModelForCausalLM.from_pretrained(folder)` and
`AutoTokenizer.from_pretrained(folder)`; the tokenizer returns `input_ids` and
`attention_mask` only.

{_corpus_section(info)}
{_model_section(info)}
{_results_section(info)}
## Tokenizer compatibility

{info.get("tokenizer_compat", TOKENIZER_COMPAT_PLACEHOLDER)}

{_lens_section(info)}
## Rebuild

```bash
{info["command"]}
```
{_replay_note(info)}
The build is deterministic up to floating-point differences between machines and
thread counts; a different Python version gives a different corpus.
"""


def write_card(out: str | Path, info: dict) -> Path:
    """Write ``README.md`` into ``out`` (with its lens's metrics, if any) and return its path."""
    metrics = Path(out) / "lens" / "metrics.csv"
    if metrics.exists():
        with metrics.open() as f:
            info = {**info, "lens_metrics": list(csv.DictReader(f))}
    path = Path(out) / "README.md"
    path.write_text(render_card(info))
    return path
