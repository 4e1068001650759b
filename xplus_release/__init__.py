"""xplus-release: train, evaluate, serve and publish the Qwen3-XPlus translation-enhanced models."""

__version__ = "0.1.0"
