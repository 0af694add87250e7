"""The CMS room's steps (steps/cms/): behave loads this file, importing them registers their steps."""

from steps.cms import availability, crowds, sessions  # noqa: F401  # imported for their step definitions
