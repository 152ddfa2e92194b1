"""The REST API's OpenAPI 3.1 document, generated from the configuration models.

Request bodies use each section's validation schema and responses its serialization schema
(pydantic `json_schema`), so the document cannot drift from what the API accepts and returns.
"""

from __future__ import annotations

from functools import cache
from typing import Any, get_args

from pydantic import TypeAdapter

from appliance.config.edit import LIST_SECTIONS, SINGLE_SECTIONS
from appliance.config.model import BoxConfig

from .apidata import DIRECTIONS, MAX_PER_PAGE, OUTCOMES

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "The request is malformed (not JSON, bad query parameter)",
    "401": "No valid bearer token",
    "403": "The token lacks the scope this operation needs",
    "413": "The body is too large",
    "415": "The body is not application/json",
    "422": "The item is invalid; `fields` has a message per field path",
    "429": "Too many requests with this token; see Retry-After",
}


def section_adapter(section: str) -> TypeAdapter[Any]:
    """The pydantic adapter of one item of a list section, or of a settings section."""
    annotation = BoxConfig.model_fields[section].annotation
    if section in LIST_SECTIONS:
        (annotation,) = get_args(annotation)
    return TypeAdapter(annotation)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: str, ok_schema: dict[str, Any] | None, *codes: str,
               write: bool = False) -> dict[str, Any]:
    """Every response an operation may give: its success, the listed errors, and `default`."""
    out: dict[str, Any] = {}
    out[ok] = (_json(ok_schema, "Success") if ok_schema is not None
               else {"description": "Done (no body)"})
    wanted = ["400", "401", "403", "429", *codes]
    if write:
        wanted += ["413", "415", "422"]
    for code in sorted(set(wanted)):
        resp = _json(_ref("Error"), _ERRORS.get(code, "Error"))
        if code == "401":
            resp["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if code == "429":
            resp["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[code] = resp
    out["default"] = _json(_ref("Error"), "Any other error (404 unknown item, 503 engine down)")
    return out


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, tag: str, scope: str, responses: dict[str, Any], *,
        body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "security": [{"bearer": [scope]}], "responses": responses,
                          "description": f"Needs a token with the `{scope}` scope."}
    if body is not None:
        op["requestBody"] = _body(body)
    if params:
        op["parameters"] = params
    op["operationId"] = _op_id(summary)
    return op


def _op_id(summary: str) -> str:
    return summary.lower().replace(" ", "_").replace("'", "").replace(",", "")


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _paged(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "title": name, "required": ["items", "total", "page", "per_page"],
            "properties": {"items": {"type": "array", "items": item},
                           "total": {"type": "integer", "minimum": 0},
                           "page": {"type": "integer", "minimum": 1},
                           "per_page": {"type": "integer", "minimum": 1}}}


_PAGE_PARAMS = [
    _query("page", {"type": "integer", "minimum": 1, "maximum": 100000}, "Page number, from 1"),
    _query("per_page", {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
           f"Items per page (at most {MAX_PER_PAGE})"),
]
_KEY = {"name": "key", "in": "path", "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": "The item's key (its key field; caller_id_rules: its position)"}
_CALL_ID = {"name": "call_id", "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_NUM_OR_NULL = {"type": ["number", "null"]}
_ANY_OBJECT = {"type": "object", "additionalProperties": True}

_FIXED_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "message"],
              "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                             "fields": {"type": "object",
                                        "additionalProperties": {"type": "string"}}}},
    "CallRecord": {"type": "object", "required": ["id", "direction", "caller", "dialled",
                                                  "started_at"],
                   "properties": {
                       "id": {"type": "string"}, "direction": {"enum": list(DIRECTIONS)},
                       "line": _STR_OR_NULL, "number": _STR_OR_NULL,
                       "caller": {"type": "string"}, "caller_name": _STR_OR_NULL,
                       "dialled": {"type": "string"}, "extension": _STR_OR_NULL,
                       "answered_by_extension": _STR_OR_NULL, "answered_by": _STR_OR_NULL,
                       "started_at": {"type": "string"}, "answered_at": _STR_OR_NULL,
                       "ended_at": _STR_OR_NULL, "disposition": _STR_OR_NULL,
                       "hangup_side": _STR_OR_NULL, "sip_cause": _INT_OR_NULL,
                       "wait_s": _NUM_OR_NULL, "talk_s": _NUM_OR_NULL,
                       "missed_reason": _STR_OR_NULL, "recorded": {"type": "boolean"}}},
    "MissedCall": {"type": "object", "required": ["id", "caller", "reason", "created_at"],
                   "properties": {
                       "id": {"type": "integer"}, "call_id": _STR_OR_NULL,
                       "caller": {"type": "string"}, "caller_name": _STR_OR_NULL,
                       "number": _STR_OR_NULL, "line": _STR_OR_NULL,
                       "reason": {"type": "string"}, "responsible": _STR_OR_NULL,
                       "created_at": {"type": "string"}}},
    "Sms": {"type": "object", "required": ["id", "direction", "peer", "text", "status"],
            "properties": {
                "id": {"type": "integer"}, "line": _STR_OR_NULL,
                "direction": {"enum": ["in", "out"]}, "peer": {"type": "string"},
                "text": {"type": "string"}, "parts": {"type": "integer"},
                "status": {"type": "string"}, "partial": {"type": "boolean"},
                "error": _STR_OR_NULL,
                "created_at": {"type": "string"}, "sent_at": _STR_OR_NULL,
                "delivered_at": _STR_OR_NULL}},
    "SendSms": {"type": "object", "required": ["line", "to", "text"],
                "additionalProperties": False,
                "properties": {"line": {"type": "string", "minLength": 1, "maxLength": 64},
                               "to": {"type": "string", "pattern": r"^\+?[0-9]{2,20}$"},
                               "text": {"type": "string", "minLength": 1, "maxLength": 1600}}},
    "Originate": {"type": "object", "required": ["extension", "number"],
                  "additionalProperties": False,
                  "properties": {
                      "extension": {"type": "string", "pattern": r"^[0-9]{2,6}$",
                                    "description": "The employee whose phones ring first"},
                      "number": {"type": "string", "pattern": r"^\+?[0-9*#]{1,32}$",
                                 "description": "Dialled once the employee answers"}}},
    "Originated": {"type": "object", "required": ["call_id"],
                   "properties": {"call_id": {"type": "string"}}},
    "LiveList": {"type": "object", "required": ["items"],
                 "properties": {"items": {"type": "array", "items": _ANY_OBJECT}}},
    "EngineReply": _ANY_OBJECT,
}


def _section_schemas() -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    inputs: list[tuple[tuple[str, str], Any, TypeAdapter[Any]]] = []
    for section in (*LIST_SECTIONS, *SINGLE_SECTIONS):
        adapter = section_adapter(section)
        inputs.append(((section, "validation"), "validation", adapter))
        inputs.append(((section, "serialization"), "serialization", adapter))
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    schemas: dict[str, Any] = defs.get("$defs", {})
    for name, schema in schemas.items():
        # A model with its own (wrap) serializer has an empty output schema, which would let
        # an item match every member of a union. What it writes is a valid input of itself.
        if schema == {} and name.endswith("-Output"):
            schemas[name] = schemas.get(name[:-len("-Output")] + "-Input", schema)
    return ({(k[0], k[1]): v for (k, _), v in keyed.items()}, schemas)


def _config_paths(keyed: dict[tuple[str, str], Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for section, field in LIST_SECTIONS.items():
        tag = section
        item_in, item_out = keyed[(section, "validation")], keyed[(section, "serialization")]
        named = f"named by `{field}`" if field else "named by position"
        created = _responses("201", item_out, "409", write=True)
        if field is not None:
            # The new item's key leads to its own operations (clients and schemathesis
            # follow these links from a create to read, replace and delete).
            key = {"key": f"$response.body#/{field}"}
            created["201"]["links"] = {
                verb: {"operationId": _op_id(f"{what} one of {section}"), "parameters": key}
                for verb, what in (("GetItem", "Get"), ("ReplaceItem", "Replace"),
                                   ("DeleteItem", "Delete"))}
        paths[f"/api/v1/config/{section}"] = {
            "get": _op(f"List {section}", tag, "read", _responses("200", {
                "type": "object", "required": ["items"],
                "properties": {"items": {"type": "array", "items": item_out}}})),
            "post": _op(f"Create in {section}", tag, "write", created, body=item_in),
        }
        paths[f"/api/v1/config/{section}/{{key}}"] = {
            "parameters": [{**_KEY, "description": f"The item's key ({named})"}],
            "get": _op(f"Get one of {section}", tag, "read", _responses("200", item_out, "404")),
            "put": _op(f"Replace one of {section}", tag, "write",
                       _responses("200", item_out, "404", "409", write=True), body=item_in),
            "delete": _op(f"Delete one of {section}", tag, "write",
                          _responses("204", None, "404", "422")),
        }
    for section in SINGLE_SECTIONS:
        paths[f"/api/v1/settings/{section}"] = {
            "get": _op(f"Get {section} settings", "settings", "read",
                       _responses("200", keyed[(section, "serialization")])),
            "put": _op(f"Replace {section} settings", "settings", "write",
                       _responses("200", keyed[(section, "serialization")], write=True),
                       body=keyed[(section, "validation")]),
        }
    return paths


def _live_paths() -> dict[str, Any]:
    live = _ref("LiveList")
    history_params = [
        _query("since", {"type": "string", "format": "date-time"}, "Calls started at or after"),
        _query("until", {"type": "string", "format": "date-time"}, "Calls started before"),
        _query("number", {"type": "string", "maxLength": 40},
               "Part of the caller's or the dialled number"),
        _query("extension", {"type": "string", "pattern": r"^[0-9]{2,6}$"},
               "Made or answered by this employee"),
        _query("direction", {"enum": list(DIRECTIONS)}, "inbound, outbound or internal"),
        _query("outcome", {"enum": list(OUTCOMES)},
               "How the call ended, or `missed` / `blocked`"),
        *_PAGE_PARAMS,
    ]
    return {
        "/api/v1/calls": {
            "get": _op("Calls in progress", "calls", "read", _responses("200", live, "503")),
            "post": _op("Click to call", "calls", "write",
                        _responses("201", _ref("Originated"), "404", "409", "503", write=True),
                        body=_ref("Originate")),
        },
        "/api/v1/calls/{call_id}": {
            "parameters": [_CALL_ID],
            "delete": _op("Hang up a call", "calls", "write",
                          _responses("204", None, "404", "503")),
        },
        "/api/v1/calls/{call_id}/hangup": {
            "parameters": [_CALL_ID],
            "post": _op("Hang up a call (POST)", "calls", "write",
                        _responses("204", None, "404", "503")),
        },
        "/api/v1/history": {
            "get": _op("Call history", "calls", "read",
                       _responses("200", _paged("CallHistory", _ref("CallRecord"))),
                       params=history_params),
        },
        "/api/v1/missed": {
            "get": _op("Missed calls", "calls", "read",
                       _responses("200", _paged("MissedCalls", _ref("MissedCall"))),
                       params=_PAGE_PARAMS),
        },
        "/api/v1/lines": {
            "get": _op("Lines live state", "lines", "read", _responses("200", live, "503")),
        },
        "/api/v1/registrations": {
            "get": _op("Registered phones", "lines", "read", _responses("200", live, "503")),
        },
        "/api/v1/sms": {
            "get": _op("Text messages", "sms", "read",
                       _responses("200", _paged("SmsList", _ref("Sms"))),
                       params=[_query("line", {"type": "string", "maxLength": 64},
                                      "Only this line's messages"), *_PAGE_PARAMS]),
            "post": _op("Send a text message", "sms", "write",
                        _responses("201", _ref("EngineReply"), "404", "409", "503",
                                   write=True), body=_ref("SendSms")),
        },
        "/api/v1/reload": {
            "post": _op("Reload the engine's configuration", "system", "write",
                        _responses("200", _ref("EngineReply"), "503")),
        },
    }


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI document (built once per process: the models do not change)."""
    keyed, defs = _section_schemas()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Office PBX API", "version": "1",
                 "description": "Everything the admin pages manage, plus calls and SMS. "
                                "Authenticate with `Authorization: Bearer <token>` (tokens "
                                "are made on the API tokens page)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**_config_paths(keyed), **_live_paths()},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API token (pbx_...)"}},
            "schemas": {**defs, **_FIXED_SCHEMAS},
        },
    }
