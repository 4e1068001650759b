"""xplus_release.evalsuite.multilingual: the paper's multilingual tasks through lm-eval (Tables 2 and 8)."""
