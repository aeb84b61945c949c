"""mailgate: an email-to-ticket gateway."""

__version__ = "0.1.0"
