"""Steps about Processor processes: a scenario's own instances, outages around them, overload, what they count."""
