"""xplus_release.evalsuite.reasoning: the paper's reasoning benchmarks through OpenCompass."""
