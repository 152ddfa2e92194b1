"""System settings: box, notifications with SMTP (a real aiosmtpd), CRMs and webhooks."""

from __future__ import annotations

import sqlite3

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import free_port
from tests.support.smtp import SmtpSink
from tests.support.web import post_form
from webui.areas.settings import item_data, notification_data

BOX = {"name": "Roga i Kopyta", "time_zone": "Europe/Samara", "country": "RU",
       "area_code": "846", "language": "en", "sip_realm": "office-pbx", "day_night": "night",
       "recording": "never"}


def _row(app: Flask, sql: str) -> tuple[object, ...]:
    conn = sqlite3.connect(app.extensions["pbx"].settings.db_path)
    try:
        return tuple(conn.execute(sql).fetchone())
    finally:
        conn.close()


def test_box_settings(app: Flask, admin_client: FlaskClient) -> None:
    assert post_form(admin_client, "/settings/", BOX).status_code == 302
    stored = app.extensions["pbx"].editor.settings("box")
    assert stored["time_zone"] == "Europe/Samara" and stored["day_night"] == "night"
    page = admin_client.get("/settings/").text
    assert "Roga i Kopyta" in page and "Europe/Samara" in page
    bad = post_form(admin_client, "/settings/", {**BOX, "country": "Russia",
                                                 "time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert 'id="e-country"' in bad.text and 'id="e-time_zone"' in bad.text
    evil = post_form(admin_client, "/settings/", {**BOX, "name": "<script>alert(1)</script>"})
    assert evil.status_code == 302
    assert "<script>alert(1)</script>" not in admin_client.get("/settings/").text


def test_notifications_keep_the_smtp_password(app: Flask, admin_client: FlaskClient) -> None:
    form = {"smtp.host": "127.0.0.1", "smtp.port": "2525", "smtp.security": "none",
            "smtp.username": "box", "smtp.password": "mail-secret",
            "smtp.from_address": "pbx@office.test", "low_balance_threshold": "50",
            "rules[0].event": "missed_call", "rules[0].channel": "email",
            "rules[0].to": "boss@office.test, deputy@office.test"}
    reply = post_form(admin_client, "/settings/notifications", form)
    assert reply.status_code == 302, reply.text
    assert _row(app, "SELECT smtp_password FROM notification_settings") == ("mail-secret",)
    stored = app.extensions["pbx"].editor.settings("notifications")
    assert stored["rules"][0]["to"] == ["boss@office.test", "deputy@office.test"]
    page = admin_client.get("/settings/notifications").text
    assert "mail-secret" not in page and "deputy@office.test" in page
    reply = post_form(admin_client, "/settings/notifications",
                      {**form, "smtp.password": "", "smtp.port": "2626"})
    assert reply.status_code == 302
    assert _row(app, "SELECT smtp_password, smtp_port FROM notification_settings") == (
        "mail-secret", 2626)
    bad = post_form(admin_client, "/settings/notifications",
                    {**form, "smtp.port": "99999", "rules[0].to": ""})
    assert bad.status_code == 400
    assert 'id="e-smtp.port"' in bad.text and "responsible_manager" in bad.text


def test_test_mail_goes_through_a_real_smtp_server(app: Flask,
                                                   admin_client: FlaskClient) -> None:
    admin_client.get("/lang/en")  # flashes are translated when they are made
    sink = SmtpSink(free_port()).start()
    try:
        post_form(admin_client, "/settings/notifications/test", {"to": "me@office.test"},
                  page="/settings/notifications")
        assert "failed" in admin_client.get("/settings/notifications?lang=en").text
        post_form(admin_client, "/settings/notifications",
                  {"smtp.host": "127.0.0.1", "smtp.port": str(sink.port),
                   "smtp.security": "none", "smtp.from_address": "pbx@office.test"})
        post_form(admin_client, "/settings/notifications/test", {"to": "me@office.test"},
                  page="/settings/notifications")
        assert "Test e-mail sent to me@office.test" in admin_client.get(
            "/settings/notifications?lang=en").text
        assert [m.rcpt_tos for m in sink.mails] == [["me@office.test"]]
    finally:
        sink.stop()


def test_crm_and_webhooks(app: Flask, admin_client: FlaskClient) -> None:
    editor = app.extensions["pbx"].editor
    reply = post_form(admin_client, "/settings/crm/new",
                      {"key": "amo", "adapter": "amocrm", "base_url": "https://amo.example.test",
                       "api_secret": "crm-key", "enabled": "true"})
    assert reply.status_code == 302, reply.text
    reply = post_form(admin_client, "/settings/crm/amo",
                      {"key": "amo", "adapter": "amocrm", "name": "Sales CRM",
                       "base_url": "https://amo.example.test", "api_secret": ""})
    assert reply.status_code == 302
    assert editor.item("crm", "amo")["name"] == "Sales CRM"
    assert _row(app, "SELECT api_secret FROM crm_connections") == ("crm-key",)
    reply = post_form(admin_client, "/settings/webhooks/new",
                      {"key": "hook", "url": "https://hooks.example.test/pbx", "secret": "hs",
                       "events[]": ["call.ended", "sms.received"], "timeout": "5"})
    assert reply.status_code == 302, reply.text
    assert editor.item("webhooks", "hook")["events"] == ["call.ended", "sms.received"]
    page = admin_client.get("/settings/integrations").text
    assert "Sales CRM" in page and "hooks.example.test" in page and "crm-key" not in page
    bad = post_form(admin_client, "/settings/webhooks/new",
                    {"key": "h2", "url": "not a url", "events[]": ["nope"]})
    assert bad.status_code == 400 and 'id="e-url"' in bad.text
    assert post_form(admin_client, "/settings/webhooks/hook/delete", {},
                     page="/settings/webhooks/hook").status_code == 302
    assert editor.items("webhooks") == []
    assert admin_client.get("/settings/employees/new").status_code == 404
    assert admin_client.get("/settings/crm/missing").status_code == 404


def test_user_gets_403(user_client: FlaskClient) -> None:
    for url in ("/settings/", "/settings/notifications", "/settings/integrations",
                "/settings/crm/new", "/settings/webhooks/new"):
        assert user_client.get(url).status_code == 403, url
    for url in ("/settings/", "/settings/notifications", "/settings/notifications/test",
                "/settings/crm/new", "/settings/crm/x/delete"):
        assert post_form(user_client, url, {"name": "x"}, page="/sms/mine/"
                         ).status_code == 403, url


def test_hostile_forms(admin_client: FlaskClient) -> None:
    reply = post_form(admin_client, "/settings/", {"name": "x" * 200_000, "a[9999]": "1"})
    assert reply.status_code == 400
    reply = post_form(admin_client, "/settings/notifications", {"rules[0]].x": "1"})
    assert reply.status_code == 400 and "bad field name" in reply.text


def test_pure_form_shaping() -> None:
    assert notification_data({"smtp": {"security": "starttls"}, "rules": [
        {"event": "voicemail", "channel": "sms", "to": "+7916 ,+7917"}, {}]}) == {
        "rules": [{"event": "voicemail", "channel": "sms", "to": ["+7916", "+7917"]}]}
    assert item_data("crm", {"key": "a"}, {"users": {"1": "101"}, "options": {}}) == {
        "key": "a", "users": {"1": "101"}}
    assert item_data("webhooks", {"key": "a"}, None) == {"key": "a", "events": []}
