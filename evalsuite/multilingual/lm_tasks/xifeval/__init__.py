"""xIFEval: BenchMAX_Rule-based (IFEval in 17 languages) as lm-eval tasks."""
