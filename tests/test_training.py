"""xplus-train on xplus-tiny, on CPU in float32: stages touch exactly their layers, the toy task is
learnt, packing changes no loss, resume is exact, baselines run, analysis and sweep write their tables,
and the output folder is served by vLLM."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from xplus_release.errors import ConfigError, RunFolderError
from xplus_release.training.config import Recipe, StageConfig, load_recipe
from xplus_release.training.dataset import IGNORE, collate, encode_conversation, load_samples, pack
from xplus_release.training.forward import ForwardSettings, per_sample_losses
from xplus_release.training.layers import LayerPlan, decoder_parts, plan_stages, select_layers
from xplus_release.training.toy import cipher, cipher_rows
from xplus_release.training.trainer import load_model, load_tokenizer, run_recipe

ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = ROOT / "training" / "recipes" / "xplus-tiny.yaml"
TRAIN = ROOT / "training" / "recipes" / "tiny-cipher-train.jsonl"
EVAL = ROOT / "training" / "recipes" / "tiny-cipher-eval.jsonl"


def layer_of(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


def weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(Path(folder).glob("*.safetensors")):
        tensors.update(load_file(str(path)))
    return tensors


def changed_layers(before: dict, after: dict) -> set:
    assert set(before) == set(after)
    return {layer_of(n) if layer_of(n) is not None else n for n in before if not torch.equal(before[n], after[n])}


def tiny_recipe(tmp: Path, **changes) -> Recipe:
    recipe = load_recipe(TINY_RECIPE, [f"output_dir={tmp}", f"data={TRAIN}", f"eval_data={EVAL}"])
    return dataclasses.replace(recipe, trackers=[], **changes)


def losses(run_dir: Path, stage: str) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["stage"] == stage]


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("two-stage")
    final = run_recipe(tiny_recipe(out), progress=False)
    return out, final, Path(tiny_model.path)


# -- recipe and layer selection --------------------------------------------------------------------
def test_paper_recipe_defaults_and_layers():
    recipe = load_recipe(ROOT / "training" / "recipes" / "qwen3-xplus-8b.yaml")
    assert (recipe.optim.epochs, recipe.optim.learning_rate, recipe.optim.min_learning_rate) == (1, 1e-5, 2e-6)
    assert recipe.optim.warmup_ratio == 0.03 and recipe.precision == "bf16" and recipe.global_batch_size == 16
    plans = plan_stages(recipe.stages, 36)
    assert plans[0].trainable_layers == (0, 1, 2, 3)
    assert plans[1].trainable_layers == tuple(range(21, 36)) and plans[1].first_grad_layer == 21
    assert TINY_RECIPE.read_text().startswith("# Run:  xplus-train run training/recipes/xplus-tiny.yaml")


def test_skip_changes_top_selection():
    stage = StageConfig(name="top", top=4, skip=[5])
    assert select_layers(stage, 8) == (3, 4, 6, 7)
    assert select_layers(StageConfig(name="x", bottom=3, skip=[1]), 8) == (0, 2)


@pytest.mark.parametrize("stage, message", [
    (StageConfig(name="s", layers=[8]), "out of range"),
    (StageConfig(name="s", bottom=9), "between 1 and 8"),
    (StageConfig(name="s", top=8, skip=[5]), "only 7 layers"),
    (StageConfig(name="s", layers=[3], skip=[3]), "selects no layer"),
    (StageConfig(name="s", skip=[-1], bottom=2), "out of range"),
])
def test_bad_layer_selection(stage, message):
    with pytest.raises(ConfigError, match=message):
        select_layers(stage, 8)


def test_overlapping_and_empty_stages(tmp_path):
    with pytest.raises(ConfigError, match="both train layer 3"):
        plan_stages([StageConfig(name="a", bottom=4), StageConfig(name="b", layers=[3, 7])], 8)
    with pytest.raises(ConfigError, match="no stages"):
        load_recipe(_write(tmp_path, {"model": "xplus-tiny", "data": "d", "output_dir": "o", "stages": []}))
    with pytest.raises(ConfigError, match="selects no layers"):
        load_recipe(_write(tmp_path, {"model": "xplus-tiny", "data": "d", "output_dir": "o", "stages": [{"name": "a"}]}))


def test_unknown_and_mistyped_keys(tmp_path):
    base = {"model": "xplus-tiny", "data": "d", "output_dir": "o", "stages": [{"name": "a", "bottom": 2}]}
    with pytest.raises(ConfigError, match="unknown key.*learning_rat"):
        load_recipe(_write(tmp_path, {**base, "optim": {"learning_rat": 1e-5}}))
    with pytest.raises(ConfigError, match="unknown key.*botom"):
        load_recipe(_write(tmp_path, {**base, "stages": [{"name": "a", "botom": 2}]}))
    with pytest.raises(ConfigError, match="global_batch_size must be int"):
        load_recipe(_write(tmp_path, {**base, "global_batch_size": "many"}))
    with pytest.raises(ConfigError, match="precision must be one of"):
        load_recipe(_write(tmp_path, {**base, "precision": "fp8"}))
    recipe = load_recipe(_write(tmp_path, base), ["optim.learning_rate=3e-4", "stages=[{name: b, top: 2}]"])
    assert recipe.optim.learning_rate == 3e-4 and recipe.stages[0].top == 2


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_model_without_decoder_layout():
    with pytest.raises(ConfigError, match="decoder layout"):
        decoder_parts(torch.nn.Linear(2, 2))


# -- data ------------------------------------------------------------------------------------------
def test_response_only_targets_with_thinking_off(tiny_model):
    tokenizer = load_tokenizer(tiny_model.path)
    row = cipher_rows(["Hello world."])[0]
    sample = encode_conversation(tokenizer, row["messages"])
    trained = [t for t in sample.targets if t != IGNORE]
    assert tokenizer.decode(trained) == cipher("Hello world.") + "<|im_end|>"
    first = next(i for i, t in enumerate(sample.targets) if t != IGNORE) + 1  # first response position
    prompt = tokenizer.decode(sample.input_ids[:first])
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # the empty think block is prompt


def test_rows_without_response_and_overlong_are_counted(tiny_model, tmp_path):
    tokenizer = load_tokenizer(tiny_model.path)
    rows = cipher_rows(["Short one.", "Another short one.", "word " * 400])
    rows.append({"messages": [{"role": "user", "content": "no answer"}]})
    rows.append({"messages": [{"role": "user", "content": "empty"}, {"role": "assistant", "content": " "}]})
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples, report = load_samples(path, tokenizer, max_length=128)
    assert (len(samples), report.rows, report.no_response, report.overlong) == (2, 5, 2, 1)
    assert report.longest > 128 and "longer than max_length" in report.summary()
    assert all(len(s.input_ids) <= 128 for s in samples)
    with pytest.raises(ConfigError, match="over max_length 128"):
        load_samples(path, tokenizer, max_length=128, overlong="error")
    path.write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(ConfigError, match="no usable sample"):
        load_samples(path, tokenizer, max_length=128)


def test_packed_and_unpacked_losses_match(tiny_model):
    tokenizer = load_tokenizer(tiny_model.path)
    samples, _ = load_samples(TRAIN, tokenizer, max_length=512, limit=6)
    model = load_model(tiny_model.path, "fp32", torch.device("cpu"))
    plan = LayerPlan("layers", (0,), 8, False, False, False)
    settings = ForwardSettings()
    packed_rows = pack(samples, 4096)
    assert len(packed_rows) == 1 and packed_rows[0].position_ids.count(0) == 6
    packed = per_sample_losses(model, collate(packed_rows, tokenizer.pad_token_id), plan, settings)
    alone = [per_sample_losses(model, collate([r], tokenizer.pad_token_id), plan, settings)[0]
             for r in pack(samples, 4096, enabled=False)]
    padded = per_sample_losses(model, collate(pack(samples, 4096, enabled=False), tokenizer.pad_token_id),
                               plan, settings)
    assert torch.allclose(torch.tensor(packed), torch.tensor(alone), rtol=1e-5, atol=1e-5)
    assert torch.allclose(torch.tensor(padded), torch.tensor(alone), rtol=1e-5, atol=1e-5)
    assert len(set(round(x, 4) for x in alone)) == 6  # distinct samples, distinct losses


# -- training --------------------------------------------------------------------------------------
def test_stage_one_touches_only_bottom_layers(two_stage):
    out, _, base = two_stage
    assert changed_layers(weights(base), weights(out / "stage-1-bottom")) == {0, 1}


def test_stage_two_touches_only_its_layers_and_skips_five(two_stage):
    out, final, base = two_stage
    assert final.resolve() == (out / "stage-2-top").resolve()
    assert changed_layers(weights(out / "stage-1-bottom"), weights(final)) == {3, 4, 6, 7}
    assert changed_layers(weights(base), weights(final)) == {0, 1, 3, 4, 6, 7}


def test_toy_task_loss_falls(two_stage):
    out, final, _ = two_stage
    first, last = losses(out, "bottom"), losses(out, "top")
    assert first[0] > 5 and last[-1] < 0.5 * first[0], (first[:3], last[-3:])
    provenance = yaml.safe_load((final / "training.yaml").read_text())
    assert provenance["stage"]["trainable_layers"] == [3, 4, 6, 7]
    assert provenance["stage"]["held_out_loss"] < 0.6 * first[0]
    assert provenance["data"]["kept"] == 400


def test_output_folder_is_complete(two_stage):
    _, final, _ = two_stage
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "generation_config.json", "training.yaml"):
        assert (final / name).is_file(), name
    assert not (final.parent / "checkpoints" / "stage-2-top").exists()  # removed once the stage is done


def test_rerun_of_finished_recipe_trains_nothing(two_stage):
    out, final, _ = two_stage
    stamp = (final / "model.safetensors").stat().st_mtime_ns
    lines = len((out / "logs" / "metrics.jsonl").read_text().splitlines())
    assert run_recipe(tiny_recipe(out), progress=False) == final
    assert (final / "model.safetensors").stat().st_mtime_ns == stamp
    assert len((out / "logs" / "metrics.jsonl").read_text().splitlines()) == lines


def test_resume_mid_stage_is_exact(tmp_path):
    small = dict(stages=[StageConfig(name="bottom", bottom=2), StageConfig(name="top", top=2)],
                 eval_data=None, save_every=2)
    whole = run_recipe(tiny_recipe(tmp_path / "whole", **small), progress=False)
    parted = tiny_recipe(tmp_path / "parted", **small)
    assert run_recipe(parted, stop_after_steps=5, progress=False) is None  # mid stage 1 (25 steps/epoch)
    assert (tmp_path / "parted" / "checkpoints" / "stage-1-bottom" / "step-0000005").is_dir()
    assert run_recipe(parted, stop_after_steps=80, progress=False) is None  # mid stage 2
    resumed = run_recipe(parted, progress=False)
    a, b = weights(whole), weights(resumed)
    assert all(torch.equal(a[n], b[n]) for n in a)
    other = dataclasses.replace(parted, optim=dataclasses.replace(parted.optim, learning_rate=1e-4))
    with pytest.raises(RunFolderError, match="another recipe"):
        run_recipe(other, progress=False)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_baselines(tmp_path, tiny_model, method):
    recipe = tiny_recipe(tmp_path, stages=[StageConfig(name=method, method=method)], eval_data=None,
                         optim=dataclasses.replace(load_recipe(TINY_RECIPE).optim, epochs=0.5))
    final = run_recipe(recipe, progress=False)
    before, after = weights(Path(tiny_model.path)), weights(final)
    changed = changed_layers(before, after)
    assert set(range(8)) <= changed
    assert ("model.embed_tokens.weight" in changed) == (method == "full")
    assert not any("lora" in name for name in after)  # LoRA is merged: a plain HF folder
    first = losses(tmp_path, method)
    assert first[-1] < first[0]


# -- analysis --------------------------------------------------------------------------------------
def test_analyze_writes_a_norm_per_layer(tmp_path, tiny_model):
    from xplus_release.training.cli import main

    assert main(["analyze", "--model", tiny_model.path, "--data", str(TRAIN), "--out", str(tmp_path),
                 "--samples", "8", "--precision", "fp32"]) == 0
    rows = (tmp_path / "qkv_grad_nuclear_norm.csv").read_text().splitlines()
    assert rows[0] == "layer,q_proj,k_proj,v_proj" and len(rows) == 9
    values = [float(v) for row in rows[1:] for v in row.split(",")[1:]]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert (tmp_path / "qkv_grad_nuclear_norm.png").stat().st_size > 1000


def test_sweep_layers_table(tmp_path, tiny_model):
    from xplus_release.training.analyze import sweep_layers

    recipe = tiny_recipe(tmp_path / "unused", optim=dataclasses.replace(load_recipe(TINY_RECIPE).optim, epochs=0.5))
    command = f"{sys.executable} -c \"import sys; print(len(sys.argv[1]))\" {{model}}"
    table = sweep_layers(recipe, [0, 7], tmp_path / "sweep", eval_command=command, progress=False)
    rows = table.read_text().splitlines()
    assert rows[0] == "layer,held_out_loss,loss_change,score,model" and [r.split(",")[0] for r in rows[1:]] == [
        "base", "0", "7"]
    assert all(float(r.split(",")[1]) > 0 and float(r.split(",")[3]) > 0 for r in rows[1:])
    assert changed_layers(weights(Path(tiny_model.path)), weights(tmp_path / "sweep" / "layer-007" / "final")) == {7}
    with pytest.raises(ConfigError, match="out of range"):
        sweep_layers(recipe, [8], tmp_path / "sweep", eval_command=command, progress=False)


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_plan_and_one_line_errors(tmp_path, capsys):
    from xplus_release.training.cli import main

    assert main(["plan", str(TINY_RECIPE)]) == 0
    plans = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["layers"] for p in plans] == [[0, 1], [3, 4, 6, 7]] and plans[1]["frozen_prefix"] == 3
    assert main(["run", str(TINY_RECIPE), "--set", "stages=[{name: a, top: 9}]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stage 'a': top must be between 1 and 8")


# -- serving ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_output_generates_in_vllm(two_stage):
    from xplus_release.engines.base import SamplingConfig
    from xplus_release.engines.vllm_local import VLLMEngine
    from xplus_release.registry import resolve_model

    _, final, _ = two_stage
    engine = VLLMEngine(resolve_model(str(final)), dtype="float32", enforce_eager=True)
    try:
        out = engine.chat([cipher_rows(["Hello."])[0]["messages"][:1]], SamplingConfig(max_tokens=8), progress=False)
    finally:
        engine.close()
    assert len(out) == 1 and out[0].text
