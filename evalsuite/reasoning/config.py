"""Writes the OpenCompass config (a Python file, OpenCompass's own format) for one reasoning run.

The config imports each task's dataset definitions from ``opencompass.configs.datasets`` unchanged, then
only renames them (``<task>__<abbr>``, so two tasks never collide and summary rows map back to tasks),
cuts them to ``--limit`` items, caps the output length when asked, and points every LLM judge at the
judge endpoint. The model is OpenCompass's ``OpenAISDK`` client of the vLLM server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xplus_release.evalsuite.reasoning.tasks import ReasoningTask

MODEL_ABBR = "model"  # the column name in OpenCompass's summary; the real name is in run.json
ABBR_SEP = "__"


@dataclass(frozen=True)
class ModelSettings:
    """A model OpenCompass's ``OpenAISDK`` client asks: the evaluated one, or the LLM judge."""

    served_name: str
    base_url: str
    api_key: str | None
    tokenizer: str  # a local tokenizer folder (OpenCompass counts prompt tokens with it)
    thinking: bool
    max_out_len: int | None = None  # None: each dataset's own
    max_seq_len: int = 32768
    concurrency: int = 16


def render_config(tasks: list[ReasoningTask], model: ModelSettings, judge: ModelSettings | None,
                  limit: int | None, work_dir: Path, in_process: bool = False) -> str:
    """The text of an OpenCompass config file for ``tasks``.

    ``in_process`` runs OpenCompass's tasks in its main process (its ``debug`` mode): no process start-up
    per dataset, which dominates smoke runs, but one failing dataset then stops the run.
    """
    imports = "\n".join(
        f"    from opencompass.configs.datasets.{t.config} import {t.variable} as _{t.name}" for t in tasks
    )
    task_list = ", ".join(f"({t.name!r}, _{t.name})" for t in tasks)
    return _TEMPLATE.format(
        imports=imports, task_list=task_list, limit=limit, sep=ABBR_SEP, debug=in_process,
        aliases=", ".join(f"_{t.name}" for t in tasks),
        max_out_len=model.max_out_len, work_dir=str(work_dir),
        model=_openai_model(MODEL_ABBR, model), judge=_openai_model("judge", judge) if judge else "None",
    )


def _openai_model(abbr: str, model: ModelSettings) -> str:
    extra_body = {"chat_template_kwargs": {"enable_thinking": model.thinking}}
    return (
        f"dict(type=OpenAISDK, abbr={abbr!r}, path={model.served_name!r}, "
        f"openai_api_base={model.base_url!r}, key={model.api_key or 'EMPTY'!r}, "
        f"tokenizer_path={model.tokenizer!r}, max_seq_len={model.max_seq_len}, "
        f"max_out_len={model.max_out_len or 32768}, batch_size={model.concurrency}, "
        f"query_per_second={model.concurrency}, retry=3, temperature=0.0, extra_body={extra_body!r}, "
        "pred_postprocessor=dict(type=extract_non_reasoning_content))"
    )


_TEMPLATE = '''\
# Written by xplus-eval reasoning; rerunning the command rewrites it.
# mmengine reads this file in its lazy-import mode: imported names are placeholders, so the code below
# only copies and edits plain dicts and lists (no stdlib calls).
from mmengine.config import read_base
from opencompass.models import OpenAISDK
from opencompass.partitioners import NaivePartitioner
from opencompass.runners import LocalRunner
from opencompass.tasks import OpenICLEvalTask, OpenICLInferTask
from opencompass.utils.text_postprocessors import extract_non_reasoning_content

with read_base():
{imports}

_judge = {judge}


def _copy(node):
    # a copy of the nested dicts and lists in which every judge_cfg (GenericLLMEvaluator, also inside a
    # CascadeEvaluator, ships an empty one) is the judge model
    if isinstance(node, dict):
        return {{key: (_judge if key == 'judge_cfg' else _copy(value)) for key, value in node.items()}}
    if isinstance(node, list):
        return [_copy(value) for value in node]
    return node


_LIMIT = {limit!r}  # items per dataset (--limit)
_MAX_OUT_LEN = {max_out_len!r}  # generated tokens per item (--max-out-len)


def _prepare(task, dataset):
    dataset = _copy(dataset)
    dataset['abbr'] = task + {sep!r} + dataset['abbr']
    if _LIMIT is not None:
        dataset['reader_cfg']['test_range'] = '[0:%d]' % _LIMIT
    if _MAX_OUT_LEN is not None:
        dataset['infer_cfg']['inferencer']['max_out_len'] = _MAX_OUT_LEN
    return dataset


datasets = []
for _task, _defs in [{task_list}]:
    for _dataset in (_defs if isinstance(_defs, list) else [_defs]):
        datasets.append(_prepare(_task, _dataset))

models = [{model}]

infer = dict(
    partitioner=dict(type=NaivePartitioner),
    runner=dict(type=LocalRunner, max_num_workers=1, debug={debug!r}, task=dict(type=OpenICLInferTask)),
)
eval = dict(
    partitioner=dict(type=NaivePartitioner),
    runner=dict(type=LocalRunner, max_num_workers=1, debug={debug!r}, task=dict(type=OpenICLEvalTask)),
)
work_dir = {work_dir!r}

# OpenCompass dumps this config and reads the dump back: only plain settings may remain
del _copy, _prepare, _judge, _LIMIT, _MAX_OUT_LEN, _task, _defs, _dataset, {aliases}
'''
