"""The `cromwell` command line: the whole project's commands (the model cache, generation,
benchmarks, evaluations, training data, training, the language server and the other front
doors), one module per command group. Each command is thin: it parses arguments and calls the
engine or the application (`cromwell_lsp`), which never import it."""
