"""Training: data pipeline (corpora, edit examples, rendered screenshots, streams, loader)."""
