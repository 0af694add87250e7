"""Steps about fans: opening maps and what they show, deliveries, browsers, web pages, hostile clients."""
