"""Build a tiny xCOMET-architecture checkpoint (random weights) for tests; run inside the comet env.

    python build_tiny_xcomet.py OUT_DIR CORPUS.txt

Writes ``OUT_DIR/encoder`` (a 2-layer XLM-R-XL config and a Unigram tokenizer trained on CORPUS),
``OUT_DIR/hparams.yaml`` (``class_identifier: xcomet_metric``) and ``OUT_DIR/checkpoints/model.ckpt``
with ``hyper_parameters`` inside, the layout of the Hub's Unbabel/XCOMET-XL (sigmoid output, as XCOMET-XL).
"""

import sys
from pathlib import Path

import pytorch_lightning
import torch
import yaml
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import XLMRobertaTokenizerFast, XLMRobertaXLConfig

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..3, then <mask>


def build_encoder(folder: Path, corpus: Path) -> None:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=4000, special_tokens=SPECIALS, unk_token="<unk>")
    tok.train([str(corpus)], trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(folder)
    XLMRobertaXLConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                       eos_token_id=2).save_pretrained(folder)


def build_checkpoint(out: Path, encoder: Path) -> None:
    from comet.models import XCOMETMetric

    torch.manual_seed(0)
    model = XCOMETMetric(pretrained_model=str(encoder), encoder_model="XLM-RoBERTa-XL", hidden_sizes=[16],
                         word_layer=2, final_activation="sigmoid", load_pretrained_weights=False, local_files_only=True)
    hparams = {**dict(model.hparams), "class_identifier": "xcomet_metric"}
    (out / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    (out / "checkpoints").mkdir(exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": pytorch_lightning.__version__}, out / "checkpoints" / "model.ckpt")


def main(out: str, corpus: str) -> int:
    out_dir = Path(out)
    (out_dir / "encoder").mkdir(parents=True, exist_ok=True)
    build_encoder(out_dir / "encoder", Path(corpus))
    build_checkpoint(out_dir, out_dir / "encoder")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
