"""XGPQA document processing: the four answers in a fixed, per-question order.

lm-eval's GPQA shuffles choices with the global ``random`` state, so two runs (or two languages of the same
question) can see different orders. Here the order is seeded by a
hash of the question text, so a rerun asks exactly the same prompts (and resumes by prompt hash).
"""

import hashlib
import random


def _clean(text) -> str:
    if text is None:
        return " "
    return " ".join(str(text).replace(" [title]", ". ").split())


def _process_doc(doc: dict) -> dict:
    correct = _clean(doc["Correct Answer"])
    choices = [_clean(doc[f"Incorrect Answer {i}"]) for i in (1, 2, 3)] + [correct]
    seed = int(hashlib.sha256(_clean(doc["Question"]).encode("utf-8")).hexdigest()[:16], 16)
    random.Random(seed).shuffle(choices)
    index = choices.index(correct)
    return {
        "choice1": choices[0], "choice2": choices[1], "choice3": choices[2], "choice4": choices[3],
        "choices": choices, "answer": f"({'ABCD'[index]})",
    }


def process_docs(dataset):
    return dataset.map(_process_doc)
