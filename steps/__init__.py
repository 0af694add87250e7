"""Step definitions, in rooms like support/'s: cms, database, fans, processes, trackers.

behave loads only the ``.py`` files at the top of ``steps/`` (and this one); each of those imports one room's step
modules, which registers their steps. A step module imports ``support``, never another step module.
"""
