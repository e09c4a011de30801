"""`python -m gentool`: the same entry point as the `gentool` console script."""

from gentool.cli import main

if __name__ == "__main__":
    main()
