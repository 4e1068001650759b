"""xplus_release.evalsuite.multilingual: the paper's multilingual tasks through lm-eval (Tables 2 and 8)."""

from xplus_release.evalsuite.multilingual.tasks import TASKS, TaskSpec, resolve_tasks

__all__ = ["TASKS", "TaskSpec", "required_datasets", "resolve_tasks"]


def required_datasets(tasks=None, langs: str = "all") -> list[tuple[str, str | None]]:
    """The Hugging Face datasets ``[(path, config)]`` the selected tasks read (for ``xplus-eval fetch-data``)."""
    from xplus_release.evalsuite.multilingual.suite import required_datasets as _required

    return _required(tasks, langs)
