"""Unit tests of the acceptance suite's own machinery (support/, the feature files' tags): fast, no services."""
