"""Cromwell's application layer: workspaces, edits, ghost text and the front doors (LSP, HTTP,
the Python API). The command line that starts them is `cromwell_cli`, which this package never
imports."""
