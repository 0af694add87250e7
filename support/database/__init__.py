"""The database: the suite's own hands on PostgreSQL, and its announcements of corrections."""
