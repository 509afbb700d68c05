"""`tuneforge ui [--runs DIR] [--host H] [--port P] [--token T]`: the local web page for the whole
loop (`tuneforge.ui.app`): runs, a new run, data, evaluate, chat, compare, export. Everything it
does is a plain tuneforge command and run folder, started in the folder this command runs in."""

from __future__ import annotations

import argparse

HELP = "open the web page: start, watch, compare, chat with and export runs"
SETUP_LOGGING = False  # the page's own commands log; this prints its address only


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", default="runs", help="the folder of run folders it lists and starts runs in")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (off loopback a token is required)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--token",
        help="the access token (default: none on 127.0.0.1; a new one, printed, on any other address)",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuneforge.extras import require

    require("tuneforge ui", "starlette", "uvicorn", "jinja2", extra="ui")
    import uvicorn

    from tuneforge.ui.app import build_app, token_for

    token = token_for(args.host, args.token)
    app = build_app(Path.cwd(), args.runs, token)
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"tuneforge ui: {url}  (runs under {args.runs}/; Ctrl-C stops the page, not the runs it started)")
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
