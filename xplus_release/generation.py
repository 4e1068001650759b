"""Resumable batched generation into a run folder's ``GenerationStore``.

Items already stored (same item id, model and prompt hash) are skipped; the rest go to the engine in
chunks, and each chunk is appended to disk as soon as it returns, so a killed run loses at most the
chunk in flight. Within a chunk the engine batches everything (vLLM schedules the whole chunk at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tqdm.auto import tqdm

from xplus_release.engines import ChatEngine, Messages, SamplingConfig
from xplus_release.prompts import prompt_hash
from xplus_release.runs import GenerationStore


@dataclass
class PromptItem:
    item_id: str
    messages: Messages
    meta: dict = field(default_factory=dict)  # stored with the record (e.g. direction, reference)


def pending_items(store: GenerationStore, items: list[PromptItem], model: str,
                  chat_template_kwargs: dict | None = None) -> list[PromptItem]:
    """The items the store does not hold yet for this model and prompt."""
    return [i for i in items if not store.has(i.item_id, model, prompt_hash(i.messages, chat_template_kwargs))]


def generate_pending(
    engine: ChatEngine,
    store: GenerationStore,
    items: list[PromptItem],
    sampling: SamplingConfig = SamplingConfig(),
    chat_template_kwargs: dict | None = None,
    chunk_size: int = 4096,
    progress: bool = True,
) -> int:
    """Generate and store what is missing; return how many items were generated now."""
    todo = pending_items(store, items, engine.model_name, chat_template_kwargs)
    if not todo:
        return 0
    chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
    bar = tqdm(total=len(todo), desc="generate", unit="prompt", disable=not progress or len(chunks) == 1)
    for chunk in chunks:
        generations = engine.chat([i.messages for i in chunk], sampling, chat_template_kwargs,
                                  progress=progress and len(chunks) == 1)
        store.append([_record(item, gen, engine.model_name, chat_template_kwargs) for item, gen in zip(chunk, generations)])
        bar.update(len(chunk))
    bar.close()
    return len(todo)


def _record(item: PromptItem, generation, model: str, chat_template_kwargs: dict | None) -> dict:
    return {
        "item_id": item.item_id,
        "model": model,
        "prompt_hash": prompt_hash(item.messages, chat_template_kwargs),
        "output": generation.text,
        "finish_reason": generation.finish_reason,
        "completion_tokens": generation.completion_tokens,
        **item.meta,
    }
