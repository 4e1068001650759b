"""xIFEval scoring: lm-eval's own IFEval instruction checkers, applied to the BenchMAX translations.

The checkers count words and sentences the way IFEval does (for English); BenchMAX's language-aware
variants are not reproduced, so counts in scripts without spaces (zh, ja, th) are approximate.
"""

import nltk

from xplus_release.errors import MissingAssetError

try:  # lm-eval's IFEval module downloads this on import, which fails quietly offline
    nltk.data.find("tokenizers/punkt_tab")
except LookupError:
    raise MissingAssetError(
        "xIFEval's checkers need NLTK's punkt_tab data; run `python -m nltk.downloader punkt_tab` "
        "(offline: on a connected machine, then copy its nltk_data folder to ~/nltk_data here)") from None

from lm_eval.tasks.ifeval.utils import agg_inst_level_acc, process_results

__all__ = ["agg_inst_level_acc", "process_results"]
