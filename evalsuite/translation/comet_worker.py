"""xCOMET scoring worker, run by ``ManagedEnv("comet", ...)`` inside the comet environment.

A plain script (that environment has unbabel-comet, not this package): reads JSONL rows
``{"id", "src", "mt", "ref"}`` from ``--input``, scores them with ``comet.load_from_checkpoint(...).predict``
and writes ``{"id", "score", "error_spans"}`` rows (score on comet's 0-1 scale) to ``--output``.
"""

from jsonl_worker import run_jsonl_worker


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="path of the model's checkpoints/model.ckpt")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gpus", type=int, default=-1, help="-1: every GPU torch sees (0 on CPU)")


def handle(rows, args):
    import torch
    from comet import load_from_checkpoint

    gpus = args.gpus if args.gpus >= 0 else torch.cuda.device_count()
    model = load_from_checkpoint(args.checkpoint)
    # comet sorts by length itself only on one device; on several (its DDP path) batches are cut in the
    # order given, so sort here: similar lengths share a batch and padding stays small
    rows = sorted(rows, key=lambda r: len(r["src"]) + len(r["mt"]))
    samples = [{"src": r["src"], "mt": r["mt"], "ref": r["ref"]} for r in rows]
    prediction = model.predict(samples, batch_size=args.batch_size, gpus=gpus, progress_bar=True)
    spans = _error_spans(prediction, len(rows))
    return [{"id": row["id"], "score": float(score), "error_spans": row_spans}
            for row, score, row_spans in zip(rows, prediction.scores, spans)]


def _error_spans(prediction, n):
    # xCOMET models return per-segment error spans in the metadata; other COMET models have none.
    metadata = getattr(prediction, "metadata", None) or {}
    spans = metadata.get("error_spans") if hasattr(metadata, "get") else None
    if spans is None:
        return [[] for _ in range(n)]
    return [[_plain(span) for span in segment] for segment in spans]


def _plain(span):
    return {k: (float(v) if isinstance(v, float) else v) for k, v in dict(span).items()}


if __name__ == "__main__":
    run_jsonl_worker(handle, __doc__, add_arguments)
