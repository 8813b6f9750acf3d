"""Training: the curriculum, the objective, the torchrun loop, checkpoints, fine-tuning and the
export to GGUF. The examples it trains on are made by `engine.data`."""
