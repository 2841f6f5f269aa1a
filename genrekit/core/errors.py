"""Errors a user can act on. Scripts print them as one line on stderr."""


class GenrekitError(Exception):
    """A problem the whole run cannot get past; exits with ``exit_code``."""

    exit_code = 1


class ConfigError(GenrekitError):
    """A bad ``pipeline_parameters.json`` key; the message names the key."""

    exit_code = 2


class TrackError(Exception):
    """One track cannot be used (undecodable, empty, silent...); the build skips it."""
