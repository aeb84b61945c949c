"""Marking words for the portal's catalogs, below every layer that has words to mark.

Pure: no Babel here. The write side marks its constant sentences with ``N_`` and raises
``InvalidValue``/``ActionRefused`` with msgid templates (``mailgate.core.errors``); the
portal translates them where it shows them (``mailgate.web.i18n``).
"""


def N_(message: str) -> str:  # gettext's name for "mark, translate later"
    """Mark ``message`` for the catalogs without translating it here: it is translated
    when it is shown, in the reader's language."""
    return message
