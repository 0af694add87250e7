"""Trackers: reports published to the telemetry stream, one by one, in bursts, continuously, or as a load run."""
