"""Steps about the CMS: who is signed in and may watch what, sessions that end, and the CMS being unavailable."""
