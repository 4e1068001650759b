"""``xplus-tiny``: a random-weight Qwen3 that needs no download, for tests and smoke runs.

Its outputs are noise; it exists so every engine, suite and server path runs for real on a laptop or a
CPU-only CI machine. It is generated deterministically on first use into the cache (weights are never
committed): a byte-level BPE tokenizer trained on FLORES sentences shipped in the package, a Qwen3-style
chat template that honours ``enable_thinking``, and a small Qwen3 with head_dim 64 (vLLM's CPU attention
rejects smaller heads) and enough layers for layer-selective training to mean something.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from xplus_release.paths import cache_dir

CORPUS = Path(__file__).with_name("assets") / "tiny_corpus.txt"  # FLORES sentences for the tokenizer
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
VOCAB_SIZE = 4096
SEED = 0

MODEL_CONFIG = {  # Qwen3Config arguments (it adds model_type; save_pretrained, the architecture)
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "use_cache": True,
}

# Qwen3's template reduced to what the package relies on: ChatML turns, and an empty think block opened
# and closed in the generation prompt when thinking is off (and before the final assistant turn, which
# is how Qwen3 renders a non-thinking answer, so training sees the same prefix as inference).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message.role == 'assistant' -%}"
    "{%- set content = message.content -%}"
    "{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}{%- endif -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if loop.last -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{{- content + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
)


def build_id() -> str:
    """Changes whenever anything that shapes the model changes, so a stale cache is never reused."""
    corpus = CORPUS.read_bytes()
    recipe = json.dumps([MODEL_CONFIG, CHAT_TEMPLATE, SPECIAL_TOKENS, VOCAB_SIZE, SEED], sort_keys=True)
    return hashlib.sha256(corpus + recipe.encode()).hexdigest()[:12]


def ensure_tiny_model(root: Path | None = None) -> tuple[Path, str]:
    """Return (folder, build id) of the tiny model, building it on first use.

    The build goes to a temporary folder that is renamed into place, so concurrent first uses (parallel
    tests, a server and a client) never see a half-written model.
    """
    bid = build_id()
    target = (root or cache_dir() / "models") / f"xplus-tiny-{bid}"
    if (target / "model.safetensors").is_file():
        return target, bid
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".xplus-tiny-", dir=target.parent))
    try:
        tokenizer = _train_tokenizer()
        _save_tokenizer(tokenizer, staging)
        _save_model(len(tokenizer.get_vocab()), tokenizer.token_to_id("<|im_end|>"), staging)
        os.replace(staging, target)
    except OSError:
        if not (target / "model.safetensors").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, bid


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def _save_tokenizer(tokenizer, folder: Path) -> None:
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "model_max_length": MODEL_CONFIG["max_position_embeddings"],
        "additional_special_tokens": SPECIAL_TOKENS,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (folder / "README.md").write_text(
        "# xplus-tiny\n\nRandom-weight Qwen3 built by xplus-release for tests and smoke runs. "
        "Its outputs are noise.\n"
    )


def _save_model(vocab_size: int, eos_id: int, folder: Path) -> None:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(SEED)
    config = Qwen3Config(**MODEL_CONFIG, vocab_size=vocab_size, eos_token_id=eos_id, pad_token_id=0,
                         bos_token_id=None)
    model = Qwen3ForCausalLM(config).to(torch.float32)  # its generation config takes eos/pad from config
    model.save_pretrained(folder, safe_serialization=True)
