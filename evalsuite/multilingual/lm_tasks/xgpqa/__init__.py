"""XGPQA: BenchMAX_Science (GPQA main in 17 languages) as lm-eval tasks."""
