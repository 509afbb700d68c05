"""`tuneforge ui`'s web application: a Starlette app of server-rendered pages (Jinja2 templates in
`templates/`, htmx and uPlot vendored in `static/vendor/`), one module per page in
`tuneforge.ui.pages`. It is a view of run folders and a launcher of plain tuneforge commands
(`tuneforge.ui.jobs`), never a second trainer: what it shows is on disk, so a restart loses nothing.

Access: bound to 127.0.0.1 it is open to this machine's user; bound elsewhere (or with a token set)
every request, the event streams included, needs the token (``?token=`` once, which sets a cookie,
or an ``Authorization: Bearer`` header), else 401. Paths a request names are confined to the project
folder (`tuneforge.ui.paths`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
COOKIE = "tuneforge_ui_token"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class UI:
    """What every page needs: the project folder (jobs run there, paths stay inside it), the runs
    folder under it, and the access token (None: open, only when bound to loopback)."""

    project: Path
    runs: Path
    token: str | None = None
    templates: Jinja2Templates | None = None

    def render(self, request: Request, template: str, status_code: int = 200, **context) -> Response:
        context.setdefault("nav", template.split(".")[0])
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def finished_runs(self) -> list[str]:
        """The finished runs' names (relative to the runs folder): what chat, evaluate and export take."""
        from tuneforge.runs.listing import list_runs

        return [str(r.path.relative_to(self.runs)) for r in list_runs(self.runs) if r.state == "finished"]

    def rel(self, path: Path) -> str:
        """A path as the page shows it and the CLI takes it: relative to the project."""
        try:
            return str(Path(path).resolve().relative_to(self.project))
        except ValueError:
            return str(path)


def token_for(host: str, token: str | None) -> str | None:
    """The token a server bound to ``host`` needs: the one given, else a new one off loopback."""
    if token:
        return token
    return None if host in LOOPBACK else secrets.token_urlsafe(18)


class TokenCheck:
    """401 for any request (pages, forms, event streams, static files) without the token."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None:
            return await self.app(scope, receive, send)
        request = Request(scope)
        given = request.query_params.get("token")
        header = request.headers.get("authorization", "")
        candidates = [given, request.cookies.get(COOKIE), header.removeprefix("Bearer ").strip() or None]
        if not any(c and secrets.compare_digest(c, self.token) for c in candidates):
            response = PlainTextResponse(
                "401: this tuneforge ui needs its token: open the address `tuneforge ui` printed "
                "(it ends in ?token=...)",
                status_code=401,
            )
            return await response(scope, receive, send)
        if given and secrets.compare_digest(given, self.token):  # remember it, so links need no token
            original = send

            async def send(message):  # noqa: F811 - wraps the reply to add the cookie
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await original(message)

        return await self.app(scope, receive, send)


def build_app(project: str | Path = ".", runs: str | Path = "runs", token: str | None = None) -> Starlette:
    from tuneforge.ui.pages import PAGES

    project = Path(project).resolve()
    ui = UI(project=project, runs=(project / runs).resolve(), token=token)
    ui.templates = Jinja2Templates(directory=str(HERE / "templates"))
    ui.templates.env.globals.update(rel=ui.rel)
    ui.templates.env.filters["num"] = _num
    routes = [Route("/", lambda request: RedirectResponse("/runs", status_code=303))]
    for page in PAGES:
        routes += page.routes(ui)
    routes.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))
    app = Starlette(routes=routes, middleware=[Middleware(TokenCheck, token=token)])
    app.state.ui = ui
    return app


def _num(value, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)
