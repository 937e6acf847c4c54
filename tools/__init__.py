"""Operator commands that need no cloud account: `python -m tools <command>`."""
