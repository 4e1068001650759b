"""Turns a GPQA row into four lettered choices: sorted by text, so the order is the same on every run."""


def letter_choices(dataset):
    def one(row):
        correct = row["Correct Answer"].strip()
        choices = sorted([correct] + [row[f"Incorrect Answer {i}"].strip() for i in (1, 2, 3)])
        return {**{f"choice{i + 1}": c for i, c in enumerate(choices)}, "answer": f"({'ABCD'[choices.index(correct)]})"}

    return dataset.map(one)
