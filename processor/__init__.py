"""The Processor: ingests tracker telemetry from a Redis stream, stores it in PostgreSQL and fans it out
to live WebSocket viewers. See ``docs/processor.md`` for the contract."""
