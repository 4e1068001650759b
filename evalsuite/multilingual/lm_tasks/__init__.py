"""lm-eval task YAMLs this project defines (BenchMAX xIFEval and XGPQA); lm-eval indexes this folder."""
