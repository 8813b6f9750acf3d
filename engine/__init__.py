"""Cromwell's model engine: tokens and pixels in, tokens out. Knows nothing of editors.

Importing this package is cheap: torch is only imported by `engine.model` and `engine.train`.
"""
