"""Off-target rate: how many hypotheses are not in the target language, by fastText language ID (the
package's LID model: NLLB's by default, lid.176 or any fastText classifier by path).

The paper reports spBLEU beside xCOMET "to avoid inflated xComet scores that can arise from directly
copying the source sentence"; this measures that directly. A hypothesis equal to its source (up to case
and spacing) is a *source copy*, counted apart and not passed to LID; an empty one is neither (the suite
counts empties already). The ``offtarget`` score of a direction is the share of its hypotheses, in percent,
that LID assigns to another language than the target; lower is better. Languages LID confuses (Serbian
in Latin script with Croatian, say) count as off-target: read the sentences in the viewer before
concluding.
"""

from __future__ import annotations

from pathlib import Path

from xplus_release.errors import UnknownLanguageError
from xplus_release.languages import get_language
from xplus_release.lid import load_lid_model, resolve_lid_model


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


class OffTargetCounter:
    """Classifies hypotheses with one loaded LID model."""

    def __init__(self, lid_model: str):
        """Raises: MissingAssetError: the model is neither a file nor in the Hugging Face cache."""
        self.path: Path = resolve_lid_model(lid_model, setting="--lid-model")
        self._model = load_lid_model(self.path)

    def language(self, text: str) -> str | None:
        """The package's code of the language LID finds most probable; None for one the package lacks."""
        # the pybind entry point: fastText 0.9.3's ``predict`` wrapper fails under numpy 2; no newlines allowed
        pairs = self._model.f.predict(" ".join(text.split()) + "\n", 1, 0.0, "strict")
        if not pairs:
            return None
        try:
            return get_language(pairs[0][1]).code
        except UnknownLanguageError:
            return None

    def count(self, records: list[dict], target: str) -> dict:
        """A direction's ``offtarget`` (percent), ``off_target``/``source_copies`` counts and their sentence
        indices (for the viewer's filter)."""
        off, copies = [], []
        for record in records:
            hypothesis = record["hypothesis"]
            if not hypothesis.strip():
                continue
            if _normalised(hypothesis) == _normalised(record["source"]):
                copies.append(record["index"])
            elif self.language(hypothesis) != target:
                off.append(record["index"])
        return {"offtarget": round(100.0 * len(off) / max(len(records), 1), 4), "off_target": len(off),
                "source_copies": len(copies), "off_target_segments": off, "source_copy_segments": copies}


def add_off_target(generations: dict[str, list[dict]], directions: dict[str, dict], lid_model: str) -> str:
    """Add the off-target fields to every direction's entry; returns the metric's signature."""
    counter = OffTargetCounter(lid_model)
    for direction, records in generations.items():
        directions[direction].update(counter.count(records, direction.split("-")[1]))
    return signature(lid_model)


def signature(lid_model: str) -> str:
    from importlib import metadata

    return f"lid:{lid_model}|copies:apart|fasttext:{metadata.version('fasttext')}"
