"""Torch-free inference: GGUF via mmap, KV cache, decode step, vision encode, sampling.

Nothing under this package imports torch: the editor path must start in milliseconds.
"""
