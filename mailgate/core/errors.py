"""The error hierarchy: one root, subclasses by what the caller must do.

A message a person may read in another language is a gettext msgid plus named values,
``InvalidValue("no team %(team)r", team=name)``: ``str()`` is the English text (the CLI,
the JSON API, the logs), ``translated(gettext)`` the same words in the reader's language
(the portal). pybabel extracts these templates (``-k InvalidValue -k ActionRefused``).
"""

from __future__ import annotations

from collections.abc import Callable

# sysexits.h codes, which MTAs (Postfix pipe, procmail) understand.
EX_DATAERR = 65
EX_SOFTWARE = 70
EX_TEMPFAIL = 75
EX_CONFIG = 2


class MailgateError(Exception):
    """Root of every error mailgate raises on purpose.

    ``exit_code`` is what the CLI exits with when this reaches it.

    ``template`` is the message as given; with named ``params`` it is a %-format msgid
    (``%(x)r`` where the words quote a value, ``%(x)s`` otherwise) and the message is
    ``template % params``. Without params the template is the message as it is (a ``%``
    in it is no placeholder): the old ``raise X(f"...")`` form, English only.
    """

    exit_code = 1

    def __init__(self, *args: object, **params: object) -> None:
        self.template = str(args[0]) if args else ""
        self.params = params
        # args hold the English message: str(), logging and pickling see it as before.
        super().__init__(*((self.template % params, *args[1:]) if params else args))

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in ``gettext``'s language (the English one where no catalog has it)."""
        words = gettext(self.template)
        return words % self.params if self.params else words


class ConfigError(MailgateError):
    """Raised when the configuration cannot be loaded or does not validate.

    ``problems`` holds one ``file: section.key: what was expected`` line each.
    """

    exit_code = EX_CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PermanentFailure(MailgateError):
    """Raised for input that will never succeed as it is: bad mail, a 5xx reply.

    SMTP answers 5xx, ``mailgate ingest`` exits 65, and nothing retries it.
    """

    exit_code = EX_DATAERR


class TemporaryFailure(MailgateError):
    """Raised when a later attempt may succeed: database busy, server down, 4xx.

    SMTP answers 4xx, ``mailgate ingest`` exits 75, and the work is retried.
    """

    exit_code = EX_TEMPFAIL


class DatabaseBusy(TemporaryFailure):
    """Raised when SQLite's write lock stayed taken for the whole busy timeout (another
    process was writing); trying again soon normally works."""


class StorageFull(TemporaryFailure):
    """Raised when the database has no room left to write (a full disk or quota).

    SMTP answers ``452 4.3.1`` (RFC 5321 "insufficient system storage"); it is
    temporary like any ``TemporaryFailure``: room may be made, then the retry works.
    """


class NotFound(MailgateError):
    """Raised when a ticket, message or notice named on the command line does not exist."""

    exit_code = 1


class ActionRefused(MailgateError):
    """Raised when a ticket's state forbids an action: a reply or a status change on a
    ticket that is closed (closing is final). The message says why, for the person."""

    exit_code = 1


class InvalidValue(MailgateError):
    """Raised when an action names something that does not exist or is not allowed:
    an unknown status, type, team or agent, a ticket linked to itself, an empty reply."""

    exit_code = 1
