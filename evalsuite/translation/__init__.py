"""The FLORES translation benchmark: every direction among the paper's languages, spBLEU/chrF/BLEU
(sacrebleu) and xCOMET (unbabel-comet, in its managed environment), aggregated as the paper does."""
