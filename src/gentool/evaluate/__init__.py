"""`gentool eval` (evaluate/command.py) and the pieces it is built from."""

from gentool.evaluate.command import run_eval

__all__ = ["run_eval"]
