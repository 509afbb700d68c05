"""What a page's form sent: the urlencoded body as a dict (the pages post plain forms, so no
multipart parser is needed)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request


async def posted(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
