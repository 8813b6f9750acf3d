"""The training data, made offline and without torch: corpus index, dedup, the held-out split,
edit, fill-in-the-middle and commit examples, rendered screenshots, charts and mockups, the
resumable streams and the multi-process loader (`engine.data.pipeline` is the entry point).

Nothing here imports torch, so data can be made, previewed and benchmarked on a machine
without it; `engine.train` turns these examples into tensors.
"""
