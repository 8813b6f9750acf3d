"""`python -m cromwell_cli`: the `cromwell` command."""

from cromwell_cli.main import main

if __name__ == "__main__":
    main()
