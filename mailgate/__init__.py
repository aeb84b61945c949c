"""mailgate: an email-to-ticket gateway."""

# The version, written only here: pyproject.toml reads it ([tool.setuptools.dynamic]),
# so the built package's metadata and `mailgate --version` always agree.
__version__ = "0.1.0"
