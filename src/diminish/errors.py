"""Errors a user can fix that the torch core raises, defined without torch so that every command
line can name them in one line (``console.guard``) without loading the core."""

from __future__ import annotations


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names stage, epoch and step."""


class NonFiniteWeightsError(NonFiniteLossError):
    """A parameter is NaN or infinite after the last step although every loss was finite."""
