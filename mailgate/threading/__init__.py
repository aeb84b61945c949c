"""Thread resolution: which ticket an inbound message belongs to (DESIGN.md §3).

Never run a file in this package as a script: its name shadows the standard library.
"""
