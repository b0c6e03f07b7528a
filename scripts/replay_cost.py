"""The cost of one cached metadata answer, counted in instructions rather than timed.

    .venv/bin/python scripts/replay_cost.py prepare
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python scripts/replay_cost.py measure N

`prepare` migrates a database of its own, publishes an npm package and a PyPI project with 30
versions each through the WSGI application, and leaves a token in var/replay-cost/. `measure N`
answers N cached GETs of each document (the packument and the simple page) through the same WSGI
application the workers serve, each with its access line (written by the application to its
stdout, here /dev/null; by gunicorn's logger class in checkouts older than that).
Run it under callgrind with two values of N: the difference of the two totals divided by the
difference of the N's is the instructions one cached request costs in Packhouse's own code,
whatever else the machine is doing (wall-clock timings on a shared machine are not).
"""

import importlib
import io
import os
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "var" / "replay-cost"
VERSIONS = 30


def _project_module():
    """The project package (its name changed once; this script measures older checkouts too)."""
    return "packhouse" if (ROOT / "packhouse" / "wsgi.py").exists() else "registry"


def _setup():
    WORK.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PACKHOUSE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/packhouse_replay_cost")
    os.environ.setdefault("PACKHOUSE_REDIS_URL", "redis://127.0.0.1:6379/6")
    os.environ.setdefault("PACKHOUSE_STORAGE_URL", str(WORK / "storage"))
    os.environ.setdefault("PACKHOUSE_SPOOL_DIR", str(WORK / "spool"))
    os.environ.setdefault("PACKHOUSE_VAR_DIR", str(WORK))
    os.environ["PACKHOUSE_TOKEN_LAST_USED_INTERVAL"] = "86400"
    os.environ["DJANGO_SETTINGS_MODULE"] = f"{_project_module()}.settings"
    return importlib.import_module(f"{_project_module()}.wsgi").application


def _environ(method, path, token, body=b"", **headers):
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path),  # decoded, as gunicorn passes it
        "RAW_URI": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT_ENCODING": "gzip",
        "HTTP_USER_AGENT": "npm/11.0.0 node/v20.0.0 linux x64",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return environ


def _call(application, environ):
    status = []
    body = b"".join(application(environ, lambda s, h, exc_info=None: status.append(s)))
    return status[0], body


def prepare():
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS packhouse_replay_cost WITH (FORCE)")
        conn.execute("CREATE DATABASE packhouse_replay_cost")
    application = _setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts import tokens
    from accounts.models import AccessToken, Group, Project, User
    from tests.payloads import npm_document, twine_form

    user = User.objects.create_user("cost", password="not-used-cost", is_superuser=True)
    group = Group.objects.create(name="cost", path="cost", visibility="private")
    project = Project.objects.create(name="cost", path="cost", group=group, visibility="private")
    token = tokens.issue(AccessToken(user=user, name="cost", scopes=["api"]), tokens.PERSONAL_PREFIX)
    base = f"/api/v4/projects/{project.pk}/packages"
    for i in range(VERSIONS):
        environ = _environ("PUT", f"{base}/npm/@cost%2fpkg", token, npm_document("@cost/pkg", f"1.0.{i}"))
        environ["CONTENT_TYPE"] = "application/json"
        status, answer = _call(application, environ)
        assert status.startswith("200"), (status, answer[:300])
        body, content_type = twine_form("cost-pkg", f"1.0.{i}")
        environ = _environ("POST", f"{base}/pypi", token, body)
        environ["CONTENT_TYPE"] = content_type
        status, answer = _call(application, environ)
        assert status.startswith(("200", "201")), (status, answer[:300])
    (WORK / "target").write_text(f"{token}\n{base}\n")
    print("prepared", base)


def measure(count):
    stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the access lines' stream
    application = _setup()
    token, base = (WORK / "target").read_text().split()
    logger = _access_logger()
    requests = [
        _environ("GET", f"{base}/npm/@cost%2fpkg", token),
        _environ("GET", f"{base}/pypi/simple/cost-pkg/", token, ACCEPT="text/html"),
    ]
    for environ in requests:  # the first answer of each is built and remembered
        assert _call(application, dict(environ, **{"wsgi.input": io.BytesIO()}))[0].startswith("200")
    for _ in range(count):
        for environ in requests:
            status, body = _call(application, dict(environ, **{"wsgi.input": io.BytesIO()}))
            if logger is not None:
                response = SimpleNamespace(status=status, sent=len(body))
                request = SimpleNamespace(method="GET", path=environ["PATH_INFO"], query="", version=(1, 1))
                logger.access(response, request, environ, timedelta(milliseconds=1))
    sys.stdout = stdout
    print("measured", count, "rounds")


def _access_logger():
    """gunicorn's access logger of an older checkout, None where the application logs itself."""
    from gunicorn.config import Config

    if not (ROOT / _project_module() / "gunicorn_logging.py").exists():
        return None
    module = importlib.import_module(f"{_project_module()}.gunicorn_logging")
    config = Config()
    config.set("accesslog", os.devnull)
    return module.AccessLogger(config)


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare()
    else:
        measure(int(sys.argv[2]))
