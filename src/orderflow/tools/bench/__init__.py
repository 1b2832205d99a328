"""`orderflow bench`: an open-loop (or flat-out) load generator for the order API.

Nothing is re-exported here: `orderflow.cli` imports `command`, and importing the package must
not load the load generator's dependencies into every other `orderflow` command.
"""
