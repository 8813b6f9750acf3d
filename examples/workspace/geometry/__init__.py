"""Small geometry helpers used by the example app."""
