"""The parts behind `engine.tokenizer`: pre-tokenizers, GGUF metadata reading, vocabulary
import and export, chat templates, special tokens, and the code corpus the Cromwell BPE is
trained on. Import the public API from `engine.tokenizer`."""
