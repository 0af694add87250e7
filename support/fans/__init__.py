"""Fans: viewers on the live channel, what they receive and see, and a real browser with the fans' web site."""
