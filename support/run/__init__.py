"""The run's lifecycle: options, services and the Processor started once, the I/O loop, order, reports."""
