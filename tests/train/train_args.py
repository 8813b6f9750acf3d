"""Command-line arguments the training tests share: cromwell-tiny, short sequences, one thread
per process (2 busy cores: more threads per process only wait on each other)."""

TINY_ARGS = ["--config", "cromwell-tiny", "--batch-size", "2", "--seq-len", "16",
             "--threads", "1", "--no-progress", "--warmup-steps", "0", "--lr", "3e-3"]
