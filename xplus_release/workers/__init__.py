"""Standard-library modules for worker scripts in managed environments (see ``jsonl_worker``)."""
