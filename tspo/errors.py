"""The base of every error tspo raises on purpose: ``except TSPOError`` catches them all.

Each concrete error also derives from the built-in it always was (mostly ``ValueError``), so existing
``except ValueError`` code keeps working. The command line prints a ``TSPOError`` that reaches it as
one line on stderr (exit 1) instead of a traceback. Imports nothing, so any module can use it.
"""


class TSPOError(Exception):
    """An input, configuration or environment problem that tspo detected and explained."""
