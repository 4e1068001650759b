"""vLLM in this process: ``LLM.chat`` over every conversation at once, so vLLM batches them itself."""

from __future__ import annotations

from xplus_release.engines.base import ChatEngine, Generation, Messages, SamplingConfig, platform_engine_args
from xplus_release.errors import ConfigError
from xplus_release.registry import ResolvedModel


class VLLMEngine(ChatEngine):
    """Loads the model once; ``chat`` is greedy by default with the model's chat-template kwargs.

    vLLM refuses data parallelism inside one process (``LLM(data_parallel_size>1)``); for several GPU
    replicas start a server (``VLLMServer(data_parallel_size=N)``) and use ``OpenAIEndpointEngine``.

    Raises:
        ConfigError: ``data_parallel_size`` > 1.
    """

    def __init__(self, model: ResolvedModel, data_parallel_size: int = 1, **engine_args):
        if data_parallel_size > 1:
            raise ConfigError(
                "vLLM runs data parallel only as a server: start one with xplus-serve "
                f"--data-parallel-size {data_parallel_size} and pass --endpoint URL"
            )
        from vllm import LLM

        self.model_name = model.name
        self.default_template_kwargs = model.spec.chat_template_kwargs
        self.engine_args = {
            "model": model.path,
            "dtype": model.spec.dtype,
            "max_model_len": model.spec.max_model_len,
            "tensor_parallel_size": 1,
            "seed": 0,
            **platform_engine_args(),
            **model.spec.engine_args,  # the registry's defaults; the caller's arguments win
            **engine_args,
        }
        self.llm = LLM(**self.engine_args)

    def _generate(self, conversations: list[Messages], sampling: SamplingConfig, template_kwargs: dict,
                  progress: bool) -> list[Generation]:
        outputs = self.llm.chat(conversations, to_sampling_params(sampling), use_tqdm=progress,
                                chat_template_kwargs=dict(template_kwargs))
        return [_to_generation(out) for out in outputs]

    def describe(self) -> dict:
        return {"kind": "vllm", **{k: v for k, v in self.engine_args.items() if v is not None}}

    def close(self) -> None:
        # vLLM frees its workers when the LLM object goes; dropping the reference is the documented way.
        self.llm = None


def to_sampling_params(sampling: SamplingConfig):
    from vllm import SamplingParams

    return SamplingParams(**sampling.request_fields())


def _to_generation(request_output) -> Generation:
    completion = request_output.outputs[0]
    return Generation(
        text=completion.text,
        finish_reason=completion.finish_reason,
        prompt_tokens=len(request_output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids),
    )
