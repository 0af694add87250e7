"""Steps about trackers: reports one by one, at the same moment, in bursts, continuously, broken, or as a load run."""
