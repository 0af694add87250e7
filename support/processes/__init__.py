"""Processor processes: the main one and a scenario's own instances, their health, metrics and troubles."""
