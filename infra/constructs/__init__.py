"""Constructs shared by the stacks: one function with the desk's defaults, one ASL state machine."""
