"""xIFEval scoring: lm-eval's own IFEval instruction checkers, applied to the BenchMAX translations.

The checkers count words and sentences the way IFEval does (for English); BenchMAX's language-aware
variants are not reproduced, so counts in scripts without spaces (zh, ja, th) are approximate.
"""

from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

__all__ = ["agg_inst_level_acc", "process_results"]
