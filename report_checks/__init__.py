"""Checks of the acceptance suite's reports; they start services, so they run in the reports lane
(.ci/lanes/reports.sh), not in the fast unit lane."""
