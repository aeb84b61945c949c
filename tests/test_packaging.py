"""mailgate installs like any tool (issue 25): `python3 -m build` makes an sdist and a wheel
holding the templates, the migrations and the example config, and the wheel, installed
with pip into a fresh venv outside the repository, runs `init`, `ingest` and `tickets list`.

The venv sees the already installed dependencies (--system-site-packages) and gets only
the wheel itself (--no-deps), so this takes seconds, not a download of every dependency.
The build is isolated, as a user's is: it fetches setuptools for its own environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from mailgate import __version__
from tests.builders import build

REPO = Path(__file__).resolve().parents[1]
# What a source release holds; the rest (tests, benchmarks, contrib) is not packaged.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "config.example.toml",
    "mailgate",
    "templates",
)


def _packaged_data() -> set[str]:
    """Every data file the package needs, as paths inside it (``mailgate/...``)."""
    templates = {
        f"mailgate/templates/{p.relative_to(REPO / 'templates')}"
        for p in (REPO / "templates").rglob("*")
        if p.is_file()
    }
    migrations = {
        f"mailgate/db/migrations/versions/{p.name}"
        for p in (REPO / "mailgate" / "db" / "migrations" / "versions").glob("*.py")
    }
    # The portal's French and Spanish words (web/i18n.py reads them from the package).
    catalogs = {
        f"mailgate/locale/{p.relative_to(REPO / 'mailgate' / 'locale')}"
        for p in (REPO / "mailgate" / "locale").rglob("*.po")
    }
    assert len(catalogs) == 2, catalogs
    return {
        *templates,
        *migrations,
        *catalogs,
        "mailgate/db/migrations/env.py",
        "mailgate/db/migrations/script.py.mako",
        "mailgate/example_config.toml",
    }


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_wheel_installs_in_a_fresh_venv_and_works(tmp_path: Path) -> None:
    """Build, look inside both archives, install the wheel, run the five-minute tour."""
    # Outside the repository: a copy of what a release holds, nothing else beside it.
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(
                origin, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(origin, source / name)
    env = {
        k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MAILGATE_")
    }
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], tmp_path, env)

    (sdist,) = dist.glob("mailgate-*.tar.gz")
    (wheel,) = dist.glob("mailgate-*-py3-none-any.whl")
    assert sdist.name == f"mailgate-{__version__}.tar.gz"
    assert wheel.name == f"mailgate-{__version__}-py3-none-any.whl"
    needed = _packaged_data()
    with tarfile.open(sdist) as tar:
        top = f"mailgate-{__version__}/"
        in_sdist = {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}
    assert needed <= in_sdist, sorted(needed - in_sdist)
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= in_sdist
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        info = f"mailgate-{__version__}.dist-info"
        metadata = whl.read(f"{info}/METADATA").decode()
        entry_points = whl.read(f"{info}/entry_points.txt").decode()
    assert needed <= in_wheel, sorted(needed - in_wheel)
    assert "mailgate/templates/web/static/portal.css" in in_wheel  # three folders deep
    assert f"\nVersion: {__version__}\n" in metadata
    assert "mailgate = mailgate.cli:main" in entry_points

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path, env)
    python, mailgate = venv / "bin" / "python", venv / "bin" / "mailgate"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    _run([*pip, "--force-reinstall", str(wheel)], tmp_path, env)
    site = tmp_path / "site"
    site.mkdir()
    where = _run([str(python), "-c", "import mailgate; print(mailgate.__file__)"], site, env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not the repository's
    assert _run([str(mailgate), "--version"], site, env).stdout == (
        f"mailgate, version {__version__}\n"
    )

    assert "wrote mailgate.toml" in _run([str(mailgate), "init"], site, env).stdout
    assert _run([str(mailgate), "check-config"], site, env).stdout == "mailgate.toml: OK\n"
    (site / "hello.eml").write_bytes(build(subject="VPN is down", sender="carol@customer.test"))
    ingested = _run([str(mailgate), "ingest", "hello.eml"], site, env)
    assert "new_ticket" in ingested.stdout + ingested.stderr, ingested
    listed = _run([str(mailgate), "tickets", "list"], site, env).stdout.splitlines()
    assert len(listed) == 2 and "VPN is down" in listed[1], listed
    assert listed[1].split()[0] == "1"
    # The acknowledgement rendered from the wheel's templates into ./outbox.
    (notice,) = (site / "outbox").glob("notice-*.eml")
    assert "Subject: [#1]" in notice.read_text()
