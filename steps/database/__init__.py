"""Steps about the database: the event as the CMS stores it, what was stored, and race control's corrections."""
