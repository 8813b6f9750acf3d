"""Quality evaluations of the runtime's models (torch-free): HumanEval pass@1, edit tasks."""
