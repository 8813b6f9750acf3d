"""Cromwell's application layer: workspaces, edits and the front doors (LSP, HTTP, CLI)."""
