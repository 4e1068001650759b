"""Generation: every pending prompt of every direction goes to the engine together, chunk by chunk.

vLLM batches across directions (one ``engine.chat`` per chunk, never one per direction); each chunk's
records are appended to ``generations/translation/<src>-<tgt>.jsonl`` before the next starts, so a killed
run loses at most one chunk and a rerun sends only what is missing. Chunks are large (20,000 prompts by
default) because each one ends with a drain, the batch shrinking while its longest outputs finish: on an
H100 a chunk is about a minute and a half of work, its drain a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from tqdm.auto import tqdm

from xplus_release.engines import SamplingConfig
from xplus_release.languages import Language
from xplus_release.prompts import postprocess_translation, prompt_hash, translation_messages
from xplus_release.runs import GenerationStore

SUITE = "translation"
# Thinking off, stated explicitly (not left to the model's default) so it is part of every prompt hash.
CHAT_TEMPLATE_KWARGS = {"enable_thinking": False}


@dataclass(frozen=True)
class Prompt:
    direction: str
    index: int
    src: Language
    tgt: Language
    source: str
    reference: str

    @property
    def item_id(self) -> str:
        return f"{self.direction}:{self.index}"

    def messages(self) -> list[dict[str, str]]:
        return translation_messages(self.source, self.src, self.tgt)


def build_prompts(pairs: list[tuple[Language, Language]], texts: dict[str, list[str]]) -> list[Prompt]:
    return [
        Prompt(f"{src.code}-{tgt.code}", i, src, tgt, source, texts[tgt.code][i])
        for src, tgt in pairs
        for i, source in enumerate(texts[src.code])
    ]


def generate(ctx, prompts: list[Prompt], max_tokens: int, chunk_size: int) -> dict[str, list[dict]]:
    """Generate what the run folder lacks (everything with ``ctx.force``); return records per direction,
    in sentence order."""
    by_direction = {d: ctx.run.generations(SUITE, d) for d in sorted({p.direction for p in prompts})}
    if ctx.force:
        for store in by_direction.values():
            store.clear()
    # the key covers decoding too, so a rerun with another --max-tokens regenerates instead of reusing
    key_extra = {**CHAT_TEMPLATE_KWARGS, "max_tokens": max_tokens}
    hashes = {p.item_id: prompt_hash(p.messages(), key_extra) for p in prompts}
    pending = [p for p in prompts if not by_direction[p.direction].has(p.item_id, ctx.model, hashes[p.item_id])]
    if pending:
        _generate_pending(ctx, pending, hashes, by_direction, max_tokens, chunk_size)
    out: dict[str, list[dict]] = {}
    for p in prompts:
        record = by_direction[p.direction].get(p.item_id, ctx.model, hashes[p.item_id])
        out.setdefault(p.direction, []).append(record)
    return out


def _generate_pending(ctx, pending: list[Prompt], hashes: dict[str, str], by_direction: dict[str, GenerationStore],
                      max_tokens: int, chunk_size: int) -> None:
    engine = ctx.engine()
    sampling = SamplingConfig(max_tokens=max_tokens)
    # the engine's own bar shows each chunk; this one, the whole run when it takes several chunks
    bar = tqdm(total=len(pending), desc="translation: all chunks", unit="prompt",
               disable=not ctx.progress or len(pending) <= chunk_size)
    for start in range(0, len(pending), chunk_size):
        chunk = pending[start:start + chunk_size]
        outputs = engine.chat([p.messages() for p in chunk], sampling, CHAT_TEMPLATE_KWARGS, progress=ctx.progress)
        records: dict[str, list[dict]] = {}
        for prompt, gen in zip(chunk, outputs):
            records.setdefault(prompt.direction, []).append(_record(prompt, gen, hashes[prompt.item_id], ctx.model))
        for direction, batch in records.items():
            by_direction[direction].append(batch)
        bar.update(len(chunk))
    bar.close()


def _record(prompt: Prompt, gen, phash: str, model: str) -> dict:
    return {
        "item_id": prompt.item_id, "model": model, "prompt_hash": phash,
        "direction": prompt.direction, "index": prompt.index,
        "source": prompt.source, "reference": prompt.reference,
        "output": gen.text, "hypothesis": postprocess_translation(gen.text),
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
    }
