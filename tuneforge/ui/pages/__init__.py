"""The pages of `tuneforge ui`, one module each; each module's ``routes(ui)`` lists its routes.
The order here is the navigation bar's."""

from __future__ import annotations

from tuneforge.ui.pages import chat, compare, data, evaluate, export, jobs, new_run, runs

PAGES = [runs, new_run, data, evaluate, chat, compare, export, jobs]
