"""xplus-train on xplus-tiny, on CPU in float32: stages touch exactly their layers, the toy task is
learnt, packing changes no loss, resume is exact, baselines run, analysis and sweep write their tables,
and the output folder is served by vLLM."""

from __future__ import annotations

import json
import math
import shutil
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


@pytest.fixture(scope="module")
def short_data(tmp_path_factory) -> Path:
    """64 toy samples of three words each: small enough for dozens of CPU steps in seconds."""
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[::6][:64]
    sources = [" ".join(json.loads(line)["messages"][0]["content"].split("\n\n", 1)[1].split()[:3]) for line in lines]
    path = tmp_path_factory.mktemp("data") / "short.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in cipher_rows(sources)), encoding="utf-8")
    return path


def tiny_recipe(tmp: Path, data: Path, **changes) -> Recipe:
    """The shipped tiny recipe on the short data: 8 samples per step, 8 steps per epoch."""
    recipe = load_recipe(TINY_RECIPE, [f"output_dir={tmp}", f"data={data}", f"eval_data={data}",
                                       "global_batch_size=8", "micro_batch_size=8"])
    return recipe.model_copy(update={"trackers": [], **changes})


def with_optim(recipe: Recipe, **changes) -> Recipe:
    return recipe.model_copy(update={"optim": recipe.optim.model_copy(update=changes)})


def losses(run_dir: Path, stage: str) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["stage"] == stage]


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory, tiny_model, short_data):
    out = tmp_path_factory.mktemp("two-stage")
    final = run_recipe(with_optim(tiny_recipe(out, short_data), epochs=0.5), progress=False)
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
    with pytest.raises(ConfigError, match=r"^unknown recipe option\(s\): optim.learning_rat; did you mean 'learning_rate'\?"):
        load_recipe(_write(tmp_path, {**base, "optim": {"learning_rat": 1e-5}}))
    with pytest.raises(ConfigError, match=r"^unknown recipe option\(s\): stages\[0\].botom; did you mean 'bottom'\?"):
        load_recipe(_write(tmp_path, {**base, "stages": [{"name": "a", "botom": 2}]}))
    with pytest.raises(ConfigError, match="^recipe option global_batch_size: Input should be a valid integer"):
        load_recipe(_write(tmp_path, {**base, "global_batch_size": "many"}))
    with pytest.raises(ConfigError, match="^unknown precision 'fp8'; choose bf16, bf16-pure or fp32$"):
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
    assert len({round(x, 4) for x in alone}) == 6  # distinct samples, distinct losses


# -- training --------------------------------------------------------------------------------------
def test_stage_one_touches_only_bottom_layers(two_stage):
    out, _, base = two_stage
    assert changed_layers(weights(base), weights(out / "stage-1-bottom")) == {0, 1}


def test_stage_two_touches_only_its_layers_and_skips_five(two_stage):
    out, final, base = two_stage
    assert final.resolve() == (out / "stage-2-top").resolve()
    assert changed_layers(weights(out / "stage-1-bottom"), weights(final)) == {3, 4, 6, 7}
    assert changed_layers(weights(base), weights(final)) == {0, 1, 3, 4, 6, 7}


def test_stages_log_and_record_provenance(two_stage):
    out, final, _ = two_stage
    assert len(losses(out, "bottom")) == 4 and len(losses(out, "top")) == 4
    provenance = yaml.safe_load((final / "training.yaml").read_text())
    assert provenance["stage"]["trainable_layers"] == [3, 4, 6, 7]
    assert provenance["stage"]["started_from"] == str(out / "stage-1-bottom")
    assert math.isfinite(provenance["stage"]["held_out_loss"]) and provenance["data"]["kept"] == 64


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
    again = tiny_recipe(out, Path(yaml.safe_load((out / "recipe.yaml").read_text())["data"]))
    assert run_recipe(with_optim(again, epochs=0.5), progress=False) == final
    assert (final / "model.safetensors").stat().st_mtime_ns == stamp
    assert len((out / "logs" / "metrics.jsonl").read_text().splitlines()) == lines


def test_resume_mid_stage_is_exact(tmp_path, short_data):
    small = {"stages": [StageConfig(name="bottom", bottom=2), StageConfig(name="top", top=2)],
             "eval_data": None, "save_every": 2}
    whole = run_recipe(with_optim(tiny_recipe(tmp_path / "whole", short_data, **small), epochs=0.5), progress=False)
    parted = with_optim(tiny_recipe(tmp_path / "parted", short_data, **small), epochs=0.5)  # 4 steps a stage
    assert run_recipe(parted, stop_after_steps=3, progress=False) is None  # mid stage 1
    assert (tmp_path / "parted" / "checkpoints" / "stage-1-bottom" / "step-0000003").is_dir()
    assert run_recipe(parted, stop_after_steps=3, progress=False) is None  # 1 more, then 2 of stage 2
    assert (tmp_path / "parted" / "checkpoints" / "stage-2-top" / "step-0000002").is_dir()
    resumed = run_recipe(parted, progress=False)
    a, b = weights(whole), weights(resumed)
    assert set(a) == set(b)
    # Usually bit-identical; CPU BLAS kernels may round differently between processes (buffer alignment,
    # threads), so allow float32 rounding. A wrong data position, optimizer state or schedule moves
    # weights by ~1e-3 (lr 2e-3), far outside this.
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    other = with_optim(parted, learning_rate=1e-4)
    with pytest.raises(RunFolderError, match="another recipe"):
        run_recipe(other, progress=False)


def test_output_dir_stored_under_the_earlier_recipe_hash_form_resumes(tmp_path, short_data):
    """Earlier versions stored recipe hashes with non-ASCII escaped (here: the data path): recipe.yaml and
    checkpoints carrying that form still resume where they stopped."""
    data = tmp_path / "données" / "short.jsonl"
    data.parent.mkdir()
    shutil.copy(short_data, data)
    recipe = with_optim(tiny_recipe(tmp_path / "out", data, eval_data=None, save_every=1), epochs=0.5)
    current, earlier = recipe.training_hash_forms()
    assert current != earlier
    assert run_recipe(recipe, stop_after_steps=2, progress=False) is None
    stage_dir = tmp_path / "out" / "checkpoints" / f"stage-1-{recipe.stages[0].name}"
    for path in [tmp_path / "out" / "recipe.yaml", *stage_dir.glob("step-*/state.json")]:
        path.write_text(path.read_text(encoding="utf-8").replace(current, earlier), encoding="utf-8")
        assert earlier in path.read_text(encoding="utf-8")
    assert run_recipe(recipe, stop_after_steps=1, progress=False) is None
    assert max(p.name for p in stage_dir.glob("step-*")) == "step-0000003"
    metrics = (tmp_path / "out" / "logs" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in metrics] == [1, 2, 3]  # resumed after step 2: none redone


def test_full_baseline_learns_the_toy_task(tmp_path, tiny_model, short_data):
    """The cipher pair is learnt: the loss ends far below its start (ln 4096 = 8.3 for a random model).
    Layer-only stages on this random model move the loss little: its tiny frozen embeddings cap how
    sharp the logits can get, which is why the full baseline carries this check."""
    recipe = with_optim(tiny_recipe(tmp_path, short_data, stages=[StageConfig(name="full", method="full")]),
                        epochs=3, learning_rate=1e-2, min_learning_rate=1e-3)
    final = run_recipe(recipe, progress=False)
    trace = losses(tmp_path, "full")
    after = yaml.safe_load((final / "training.yaml").read_text())["stage"]["held_out_loss"]  # no-grad pass
    assert trace[0] > 7.5 and after < 0.6 * trace[0], (trace, after)
    changed = changed_layers(weights(Path(tiny_model.path)), weights(final))
    assert set(range(8)) | {"model.embed_tokens.weight", "model.norm.weight"} <= changed


def test_lora_baseline_is_merged(tmp_path, tiny_model, short_data):
    recipe = with_optim(tiny_recipe(tmp_path, short_data, stages=[StageConfig(name="lora", method="lora")]),
                        epochs=0.5)
    final = run_recipe(recipe, progress=False)
    before, after = weights(Path(tiny_model.path)), weights(final)
    assert changed_layers(before, after) == set(range(8))  # every layer, never the embeddings or norm
    assert not any("lora" in name for name in after)  # merged: a plain Hugging Face folder
    assert len(losses(tmp_path, "lora")) == 4


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


def test_sweep_layers_table(tmp_path, tiny_model, short_data):
    from xplus_release.training.analyze import sweep_layers

    recipe = with_optim(tiny_recipe(tmp_path / "unused", short_data), epochs=0.5)
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
    out = tmp_path / "out"
    assert main(["run", str(TINY_RECIPE), "--set", "stages=[{name: a, top: 9}]", "--set", f"output_dir={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: stage 'a': top must be between 1 and 8")
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("recipe_line, overrides, message", [
    ("global_batch_sise: 8", [], "unknown recipe option(s): global_batch_sise; did you mean 'global_batch_size'?"),
    ("", ["optim.lerning_rate=1e-4"], "unknown recipe option(s): optim.lerning_rate; did you mean 'learning_rate'?"),
    ("", ["stages=[{name: a, top: 2, lora: {rnk: 4}}]"],
     "unknown recipe option(s): stages[0].lora.rnk; did you mean 'rank'?"),
    ("max_length: long", [], "recipe option max_length: Input should be a valid integer"),
    ("", ["micro_batch_size=0"], "micro_batch_size must be at least 1, got 0"),
    ("", ["stages.top.bottom=2"], "--set stages.top.bottom: stages is not a mapping; set it whole"),
])
def test_cli_bad_recipe_keys_are_one_line_before_anything_is_written(tmp_path, capsys, recipe_line, overrides,
                                                                    message):
    from xplus_release.training.cli import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(TINY_RECIPE.read_text() + recipe_line + "\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["run", str(recipe), "--set", f"output_dir={out}", *(item for o in overrides for item in ("--set", o))]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}")
    assert not out.exists()


def test_cli_set_overrides_recipe_keys(capsys):
    from xplus_release.training.cli import main

    argv = ["plan", str(TINY_RECIPE), "--set", "stages=[{name: a, bottom: 3}, {name: b, top: 2, optim: {epochs: 2}}]",
            "--set", "optim.learning_rate=5e-4"]
    assert main(argv) == 0
    plans = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["stage"], p["layers"]) for p in plans] == [("a", [0, 1, 2]), ("b", [6, 7])]
    assert [(p["optim"]["learning_rate"], p["optim"]["epochs"]) for p in plans] == [(5e-4, 1.0), (5e-4, 2.0)]
    recipe = load_recipe(TINY_RECIPE, ["optim.warmup_ratio=0.1", "trackers=[]"])
    assert (recipe.optim.warmup_ratio, recipe.optim.learning_rate, recipe.trackers) == (0.1, 2e-3, [])


# -- serving ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_output_generates_in_vllm(two_stage):
    from xplus_release.engines.base import SamplingConfig
    from xplus_release.engines.vllm_local import VLLMEngine
    from xplus_release.registry import resolve_model

    _, final, _ = two_stage
    messages = cipher_rows(["Hello."])[0]["messages"][:1]
    tokenizer = load_tokenizer(str(final))
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    engine = VLLMEngine(resolve_model(str(final), max_model_len=2048), dtype="float32", enforce_eager=True)
    try:
        out = engine.chat([messages], SamplingConfig(max_tokens=8), progress=False)
    finally:
        engine.close()
    # The served prompt is the trained one (same template, thinking off); the trained weights generate.
    assert len(out) == 1 and out[0].prompt_tokens == len(prompt_ids)
    assert out[0].completion_tokens >= 1 and out[0].finish_reason in ("stop", "length")
