"""`python -m cromwell_lsp`: the language server on stdio, as `cromwell lsp` starts it (that
command adds TCP and logging options)."""

from cromwell_lsp.lsp_transport import run_server

if __name__ == "__main__":
    run_server()
