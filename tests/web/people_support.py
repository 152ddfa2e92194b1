"""Shared by the people areas' tests."""

from __future__ import annotations

from flask import Flask


def english(app: Flask) -> None:
    """Show the box's pages in English, so assertions read the source texts."""
    app.extensions["pbx"].db.write(lambda c: c.conn.execute(
        "INSERT INTO box_settings (key, value) VALUES ('language', '\"en\"') "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value"))
