"""django-helpdesk for benchmarks/peers.py: its own venv, a throwaway project, a timed import.

django-helpdesk reads mail for a queue whose ``email_box_type`` is ``local`` from a
directory of files, one message each (``helpdesk.email.process_queue``): every file it
turns into a ticket or follow-up is deleted. The project here is the smallest one the
app runs in (SQLite, teams mode off, e-mail written to files like mailgate's outbox),
migrated before the clock starts; only ``helpdesk.email.process_email()`` is timed, in
the driver process, so Python and Django start-up are not counted against it.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

from _peers_common import Measured, PeerError, ensure_venv, run

# Verified together on Python 3.11: the newest django-helpdesk and the Django LTS it needs.
PINS = ["django-helpdesk==2.6.1", "Django==5.2.19"]

SETTINGS = """
from pathlib import Path
BASE = Path(__file__).resolve().parent
SECRET_KEY = {secret!r}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.sites",
    "django.contrib.humanize", "rest_framework", "helpdesk",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
SITE_ID = 1
HELPDESK_TEAMS_MODE_ENABLED = False  # pinax-teams is an optional extra
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                           "NAME": str(BASE / "db.sqlite3")}}}}
ROOT_URLCONF = "urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
USE_TZ = True
MEDIA_ROOT = str(BASE / "media")
# The notices it sends to submitters go to files, as mailgate's one-box outbox does.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(BASE / "outbox")
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
"""

URLS = """
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
"""

# Runs inside the helpdesk venv: "setup" migrates and creates the queue, "import"
# times the mail import and prints one JSON line of counts.
DRIVER = """
import json, os, sys, time
project, mode, maildir = sys.argv[1:4]
sys.path.insert(0, project)
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django
django.setup()
from django.core.management import call_command
from helpdesk.models import FollowUp, FollowUpAttachment, Queue, Ticket
import helpdesk.email
if mode == "setup":
    call_command("migrate", verbosity=0)
    Queue.objects.create(
        title="Support", slug="support", email_address="support@example.com",
        email_box_type="local", email_box_local_dir=maildir, allow_email_submission=True,
        email_box_interval=0, logging_type="none",
    )
else:
    # helpdesk takes the files in os.listdir order, which on most file systems is hash
    # order: sorted, replies follow the messages they answer, as in the mbox (and as
    # mailgate and Roundup see them), so threading by In-Reply-To can work.
    unsorted = os.listdir
    os.listdir = lambda path: sorted(unsorted(path))
    start = time.perf_counter()
    helpdesk.email.process_email(quiet=True)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds,
        "tickets": Ticket.objects.count(),
        "followups": FollowUp.objects.count(),
        "attachments": FollowUpAttachment.objects.count(),
        "left": len(unsorted(maildir)),
    }))
"""


def measure(cache: Path, corpus: list[bytes], timeout: float) -> Measured:
    """Import ``corpus`` into a fresh django-helpdesk; only the import is timed."""
    python, versions = ensure_venv(cache, "django-helpdesk", PINS)
    with tempfile.TemporaryDirectory(prefix="peers-helpdesk-") as tmp:
        root = Path(tmp)
        project, maildir = root / "project", root / "mail"
        project.mkdir()
        maildir.mkdir()
        (project / "settings.py").write_text(SETTINGS.format(secret=secrets.token_hex(16)))
        (project / "urls.py").write_text(URLS)
        driver = root / "driver.py"
        driver.write_text(DRIVER)
        for i, raw in enumerate(corpus):
            (maildir / f"{i:06d}.eml").write_bytes(raw)
        base = [str(python), str(driver), str(project)]
        run([*base, "setup", str(maildir)], timeout=600, cwd=root)
        done = run([*base, "import", str(maildir)], timeout=timeout, cwd=root)
    try:
        counts = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise PeerError(f"no counts from the driver: {done.stdout[-300:]!r}") from exc
    check = (
        f"{counts['tickets']} tickets, {counts['followups']} follow-ups, "
        f"{counts['attachments']} attachments; {counts['left']} files left unimported"
    )
    if counts["followups"] == 0:
        raise PeerError(f"nothing was imported ({check})")
    version = ", ".join(f"{name} {v}" for name, v in versions.items())
    # Every message must have become a ticket or a follow-up, or the rate means nothing.
    valid = counts["followups"] == len(corpus) and counts["left"] == 0
    return Measured("django-helpdesk", version, len(corpus), counts["seconds"], check, valid)
