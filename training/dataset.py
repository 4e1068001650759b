"""Chat JSONL to training tensors: chat template with thinking off, response-only targets, packing.

A row is ``{"messages": [{"role": "user", ...}, ..., {"role": "assistant", "content": ...}]}`` (what
``xplus-data`` writes, or any chat JSONL). The final assistant turn is the response; everything before
it, rendered by the model's own chat template as a generation prompt with ``enable_thinking=False``, is
the prompt. Qwen3's empty ``<think>\\n\\n</think>\\n\\n`` block is part of that prompt, so it is never
trained on and training sees exactly the prefix that inference sends.

Targets are stored already shifted (``targets[t]`` is the token position ``t`` must predict, or -100),
so concatenating samples into one packed row never lets one sample's last token predict the next one's
first. Packed rows restart position ids at 0 for each sample and carry segment ids from which the
attention mask is built: no token attends across samples.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xplus_release.errors import ConfigError

IGNORE = -100
THINKING_OFF = {"enable_thinking": False}


@dataclass
class Sample:
    input_ids: list[int]
    targets: list[int]  # shifted: targets[t] is predicted at position t; IGNORE outside the response

    @property
    def response_tokens(self) -> int:
        return sum(t != IGNORE for t in self.targets)


@dataclass
class DatasetReport:
    """What loading dropped, and why (reported in the log and in training.yaml, never silent)."""

    rows: int = 0
    kept: int = 0
    no_response: int = 0
    overlong: int = 0
    longest: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, reason: str, line: int) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"line {line}: {reason}")

    def summary(self) -> str:
        return (f"{self.kept}/{self.rows} samples kept; dropped {self.no_response} without a response and "
                f"{self.overlong} longer than max_length (longest sample {self.longest} tokens)")


def read_chat_jsonl(path: str | Path) -> Iterator[tuple[int, list[dict]]]:
    """Yield (line number, messages). Raises ConfigError on a missing file or malformed JSON."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist; point data: at a chat JSONL (xplus-data writes one)")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{number} is not valid JSON ({err.msg}); fix or remove that line") from None
            messages = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(messages, list):
                raise ConfigError(f"{path}:{number} has no \"messages\" list; rows must be chat JSONL")
            yield number, messages


def has_response(messages: list[dict]) -> bool:
    last = messages[-1] if messages else {}
    return isinstance(last, dict) and last.get("role") == "assistant" and bool(str(last.get("content", "")).strip())


def encode_conversation(tokenizer, messages: list[dict]) -> Sample:
    """Tokenise one conversation: prompt (template, thinking off) then response; targets on the response.

    Raises:
        ConfigError: the tokenizer has no chat template, or its rendering of the full conversation does
            not start with its rendering of the prompt (the response could then not be located).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError("the model's tokenizer has no chat template; use an instruct model or add chat_template.jinja")
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True, **THINKING_OFF)
    full = tokenizer.apply_chat_template(messages, tokenize=False, **THINKING_OFF)
    if not full.startswith(prompt):
        raise ConfigError("the chat template renders the prompt differently inside the full conversation; "
                          "the response cannot be located (check the template's handling of enable_thinking)")
    # The newline after the closing end-of-turn token is never generated: stop training at the token.
    response = full[len(prompt):].rstrip("\n")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + response_ids
    labels = [IGNORE] * len(prompt_ids) + response_ids
    return Sample(input_ids=ids, targets=labels[1:] + [IGNORE])


def load_samples(path: str | Path, tokenizer, max_length: int, overlong: str = "drop",
                 limit: int | None = None) -> tuple[list[Sample], DatasetReport]:
    """Read and tokenise a chat JSONL. Rows without a response and samples over ``max_length`` are
    counted (and dropped), never cut.

    Raises:
        ConfigError: unreadable data, ``overlong: error`` and a sample is too long, or nothing is left.
    """
    report = DatasetReport()
    samples: list[Sample] = []
    for number, messages in read_chat_jsonl(path):
        if limit is not None and report.rows >= limit:
            break
        report.rows += 1
        if not has_response(messages):
            report.no_response += 1
            report.note("no final assistant turn with content", number)
            continue
        sample = encode_conversation(tokenizer, messages)
        report.longest = max(report.longest, len(sample.input_ids))
        if len(sample.input_ids) > max_length:
            if overlong == "error":
                raise ConfigError(f"{path}:{number} is {len(sample.input_ids)} tokens, over max_length {max_length}; "
                                  "raise max_length or set overlong: drop")
            report.overlong += 1
            report.note(f"{len(sample.input_ids)} tokens > max_length {max_length}", number)
            continue
        samples.append(sample)
    report.kept = len(samples)
    if not samples:
        raise ConfigError(f"no usable sample in {path}: {report.summary()}")
    return samples, report


@dataclass
class Row:
    """One packed sequence: samples side by side, positions restarting at 0, segment ids 1, 2, ..."""

    input_ids: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        segment = (self.segments[-1] if self.segments else 0) + 1
        self.input_ids += sample.input_ids
        self.targets += sample.targets
        self.position_ids += list(range(len(sample.input_ids)))
        self.segments += [segment] * len(sample.input_ids)


def pack(samples: list[Sample], row_length: int, enabled: bool = True) -> list[Row]:
    """Pack samples into rows of at most ``row_length`` tokens, first fit in order (deterministic);
    with ``enabled`` false, one sample per row."""
    rows: list[Row] = []
    for sample in samples:
        target = None
        if enabled:
            target = next((r for r in rows if len(r.input_ids) + len(sample.input_ids) <= row_length), None)
        if target is None:
            target = Row()
            rows.append(target)
        target.add(sample)
    return rows


def collate(rows: list[Row], pad_id: int):
    """Rows to tensors: input_ids, targets, position_ids [B, T] and segments (0 = padding)."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    batch = {"input_ids": [], "targets": [], "position_ids": [], "segments": []}
    for row in rows:
        pad = width - len(row.input_ids)
        batch["input_ids"].append(row.input_ids + [pad_id] * pad)
        batch["targets"].append(row.targets + [IGNORE] * pad)
        batch["position_ids"].append(row.position_ids + list(range(pad)))
        batch["segments"].append(row.segments + [0] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


def attention_mask(segments):
    """Boolean [B, 1, T, T] mask: causal, within one segment. Padding (segment 0) attends to earlier
    padding only, so no row of the mask is empty. ``None`` when every row is one unpadded sample, which
    lets SDPA take its fused causal kernel."""
    import torch

    if bool((segments == segments[:, :1]).all()) and bool((segments > 0).all()):
        return None
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    same = segments[:, :, None] == segments[:, None, :]
    return (same & causal)[:, None]


def sample_order(n_samples: int, total: int, seed: int) -> list[int]:
    """The sample stream for ``total`` draws: epoch after epoch, each shuffled with (seed, epoch)."""
    order: list[int] = []
    epoch = 0
    while len(order) < total:
        indices = list(range(n_samples))
        random.Random(seed * 1000003 + epoch).shuffle(indices)
        order += indices
        epoch += 1
    return order[:total]
