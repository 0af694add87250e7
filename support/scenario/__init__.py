"""One scenario: its world (names to fresh ids), the state each feature keeps in it, and what steps are handed."""
