"""Small suites the ``xplus-eval all`` tests register next to the real ones.

``CountSuite`` generates one item per engine call (so a kill lands between items) and records how many
it generated in this invocation; ``BrokenSuite`` always fails. Both are plain ``Suite`` implementations
used only to exercise ``all``'s resume and failure isolation with a real engine.
"""

from __future__ import annotations

import os
import time

from xplus_release.engines import SamplingConfig
from xplus_release.evalsuite.base import EvalContext, Suite, SuiteResult
from xplus_release.runs import RunFolder

ITEMS = 6


class CountSuite(Suite):
    name = "count"

    def run(self, ctx: EvalContext) -> SuiteResult:
        store = ctx.run.generations(self.name, "echo")
        generated = 0
        for index in range(ITEMS):  # independent of --limit, which the real suites share
            item_id = f"item-{index}"
            if store.has(item_id, ctx.model, "p0"):
                continue
            reply = ctx.engine().chat([[{"role": "user", "content": f"say {index}"}]],
                                      SamplingConfig(max_tokens=4), progress=False)[0]
            store.append([{"item_id": item_id, "model": ctx.model, "prompt_hash": "p0", "text": reply.text}])
            generated += 1
            time.sleep(float(os.environ.get("COUNT_SUITE_DELAY", "0")))
        return SuiteResult({"items": len(store.records()), "generated_this_run": generated})

    def report(self, run: RunFolder, scores: dict) -> str:
        return f"## count\n\n{scores['items']} items\n"


class BrokenSuite(Suite):
    name = "broken"

    def run(self, ctx: EvalContext) -> SuiteResult:
        raise RuntimeError("this suite always fails")

    def report(self, run: RunFolder, scores: dict) -> str:
        return "## broken\n"

