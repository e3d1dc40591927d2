"""An MCP server that provides everything the official conformance suite's server scenarios call.

The suite (`@modelcontextprotocol/conformance`, pinned in package.json) calls fixed tool, resource and prompt
names; this server provides them, for the 2025-06-18 / 2025-11-25 revisions (0.1.16) and for 2026-07-28
(0.2.0 alpha). It is the fixture the gateway tests put behind the hub, as a streamable-HTTP upstream and as a
stdio upstream, so the same suite can be run through `/mcp/{fixture}` and compared with the direct run.

Run it:
    python tests/conformance/fixture_server.py --transport http --port 3301   # http://127.0.0.1:3301/mcp
    python tests/conformance/fixture_server.py --transport stdio

Built on the SDK's `MCPServer` so that the protocol machinery under test (sessions, SSE resumability,
request-state sealing, caching hints, per-request `_meta` on 2026-07-28) is the SDK's, not ours.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import itertools
import json
import logging
import warnings
from typing import Any

import anyio
import uvicorn
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    CallToolResult,
    ClientCapabilities,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequiredResult,
    InputResponses,
    JSONRPCMessage,
    ListRootsRequest,
    ListRootsResult,
    LoggingLevel,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger("conformance-fixture")

# A 1x1 PNG and a minimal WAV header: the suite checks type, mimeType and that data is present.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_EMPTY = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

LOG_LEVELS: tuple[LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)

# The superset both suites inspect: SEP-1613 ($schema, $defs, additionalProperties) and SEP-2106 ($anchor,
# allOf/anyOf, if/then/else), which the 0.2.0 alpha requires from 2026-07-28.
JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}

SEP1034_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
    "required": [],
}

SEP1330_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {
            "type": "array",
            "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
        },
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
    "required": [],
}


class InMemoryEventStore(EventStore):
    """Keeps every SSE event so a client that reconnects with Last-Event-ID gets what it missed (SEP-1699).

    Unbounded on purpose: the fixture lives for one test run.
    """

    def __init__(self) -> None:
        self._events: list[tuple[StreamId, EventId, JSONRPCMessage | None]] = []
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = str(next(self._ids))
        self._events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        stream = next((s for s, e, _ in self._events if e == last_event_id), None)
        if stream is None:
            return None
        after = int(last_event_id)
        for stream_id, event_id, message in list(self._events):
            # Priming events carry no message; there is nothing to replay for them.
            if stream_id == stream and int(event_id) > after and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream


class FixtureState:
    """Per-process state the scenarios observe: log threshold, subscriptions."""

    def __init__(self) -> None:
        self.log_level: LoggingLevel = "debug"
        self.subscriptions: set[str] = set()

    def should_log(self, level: LoggingLevel) -> bool:
        return LOG_LEVELS.index(level) >= LOG_LEVELS.index(self.log_level)


def _elicit(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    return CreateMessageRequest(
        params=CreateMessageRequestParams(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=text))],
            max_tokens=max_tokens,
        )
    )


def _text(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)])


def _accepted_content(responses: InputResponses | None, key: str) -> dict[str, Any] | None:
    """The form content of an accepted elicitation answer, or None when the answer is absent or not one."""
    answer = (responses or {}).get(key)
    if isinstance(answer, ElicitResult) and answer.action == "accept":
        return dict(answer.content or {})
    return None


def _sampled_text(responses: InputResponses | None, key: str) -> str | None:
    answer = (responses or {}).get(key)
    if isinstance(answer, CreateMessageResult) and isinstance(answer.content, TextContent):
        return answer.content.text
    return None


def _roots(responses: InputResponses | None, key: str) -> list[str] | None:
    answer = (responses or {}).get(key)
    if isinstance(answer, ListRootsResult):
        return [str(root.uri) for root in answer.roots]
    return None


WATCHED_URI = "test://watched-resource"
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def build_server(omit: frozenset[str] = frozenset()) -> MCPServer:
    """The fixture; `omit` drops tools by name (tests use it to prove a missing tool is caught)."""
    state = FixtureState()
    server: MCPServer = MCPServer(
        name="mcp-hub-conformance-fixture",
        version="1.0.0",
        tools=_schema_tools(),
        # SEP-2549: results of cacheable methods must carry ttlMs and cacheScope on 2026-07-28.
        cache_hints={
            "tools/list": CacheHint(ttl_ms=0, scope="public"),
            "prompts/list": CacheHint(ttl_ms=0, scope="public"),
            "resources/list": CacheHint(ttl_ms=0, scope="public"),
            "resources/templates/list": CacheHint(ttl_ms=0, scope="public"),
            "resources/read": CacheHint(ttl_ms=0, scope="private"),
        },
    )

    async def log(ctx: Context, level: LoggingLevel, message: str) -> None:
        if state.should_log(level):
            await ctx.log(level, message)

    # ---- tools: content types -------------------------------------------------------------------------
    @server.tool(description="Returns simple text content")
    def test_simple_text() -> str:
        return "This is a simple text response for testing."

    @server.tool(description="Returns image content")
    def test_image_content() -> list[ImageContent]:
        return [ImageContent(type="image", data=PNG_1X1, mime_type="image/png")]

    @server.tool(description="Returns audio content")
    def test_audio_content() -> list[AudioContent]:
        return [AudioContent(type="audio", data=WAV_EMPTY, mime_type="audio/wav")]

    @server.tool(description="Returns an embedded resource")
    def test_embedded_resource() -> list[EmbeddedResource]:
        return [
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri="test://embedded-resource",
                    mime_type="text/plain",
                    text="This is an embedded resource content.",
                ),
            )
        ]

    @server.tool(description="Returns text, image and resource content together")
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        return [
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG_1X1, mime_type="image/png"),
            EmbeddedResource(
                type="resource",
                resource=TextResourceContents(
                    uri="test://mixed-content-resource",
                    mime_type="application/json",
                    text=json.dumps({"test": "data", "value": 123}),
                ),
            ),
        ]

    @server.tool(description="Always fails with a tool error")
    def test_error_handling() -> str:
        raise ToolError("This tool intentionally returns an error for testing")

    # ---- tools: notifications during a call -----------------------------------------------------------
    @server.tool(description="Sends three info log messages while it runs")
    async def test_tool_with_logging(ctx: Context) -> str:
        await log(ctx, "info", "Tool execution started")
        await asyncio.sleep(0.05)
        await log(ctx, "info", "Tool processing data")
        await asyncio.sleep(0.05)
        await log(ctx, "info", "Tool execution completed")
        return "Tool with logging executed successfully"

    @server.tool(description="Logs one message; on 2026-07-28 only when the request opted in to logging")
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.log("info", "test_logging_tool ran")
        return "logged"

    @server.tool(description="Reports progress 0, 50, 100 of 100")
    async def test_tool_with_progress(ctx: Context) -> str:
        for step, progress in enumerate((0, 50, 100)):
            if step:
                await asyncio.sleep(0.05)
            await ctx.report_progress(
                progress=progress, total=100, message=f"Completed step {progress} of 100"
            )
        return "Progress test completed"

    @server.tool(description="Closes its SSE stream mid-call so the client must reconnect (SEP-1699)")
    async def test_reconnection(ctx: Context) -> str:
        await log(ctx, "info", "Before disconnect")
        await ctx.close_sse_stream()
        # Long enough for the client to honour the retry interval and reconnect with Last-Event-ID.
        await asyncio.sleep(0.2)
        await log(ctx, "info", "After reconnect")
        return "Reconnection test completed"

    @server.tool(
        description="Closes its SSE stream `times` times without a word in between (not the suite's)"
    )
    async def closes_its_stream_repeatedly(ctx: Context, times: int = 4) -> str:
        for _ in range(times):
            await ctx.close_sse_stream()
            # Past the retry interval, so each close ends a stream the client has resumed.
            await asyncio.sleep(0.3)
        return "closed"

    # ---- tools: server-to-client requests (2025 revisions) --------------------------------------------
    @server.tool(description="Asks the client to sample an LLM completion")
    async def test_sampling(prompt: str, ctx: Context) -> str:
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        text = result.content.text if isinstance(result.content, TextContent) else "(non-text response)"
        return f"LLM response: {text}"

    @server.tool(description="Asks the user for a username and email")
    async def test_elicitation(message: str, ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            message=message,
            requested_schema={
                "type": "object",
                "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"},
                },
                "required": ["username", "email"],
            },
            related_request_id=ctx.request_id,
        )
        return f"User response: action={result.action}, content={json.dumps(result.content or {})}"

    @server.tool(description="Elicits a form whose fields all have defaults (SEP-1034)")
    async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            message="Please provide user information",
            requested_schema=SEP1034_SCHEMA,
            related_request_id=ctx.request_id,
        )
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"

    @server.tool(description="Elicits a form with the five enum variants (SEP-1330)")
    async def test_elicitation_sep1330_enums(ctx: Context) -> str:
        result = await ctx.session.elicit_form(
            message="Please select values using different enum schema types",
            requested_schema=SEP1330_SCHEMA,
            related_request_id=ctx.request_id,
        )
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"

    # ---- tools: 2026-07-28 (input-required results, SEP-2322; stateless SEP-2575) ---------------------
    @server.tool(description="Asks for the user's name via an input-required result")
    def test_input_required_result_elicitation(ctx: Context) -> CallToolResult | InputRequiredResult:
        content = _accepted_content(ctx.input_responses, "user_name")
        if content is None or not isinstance(content.get("name"), str):
            # Missing, wrong or declined answers are asked again rather than failed (SEP-2322 SHOULD).
            return InputRequiredResult(
                input_requests={"user_name": _elicit("What is your name?", NAME_SCHEMA)}
            )
        return _text(f"Hello, {content['name']}!")

    @server.tool(description="Asks the client to sample via an input-required result")
    def test_input_required_result_sampling(ctx: Context) -> CallToolResult | InputRequiredResult:
        text = _sampled_text(ctx.input_responses, "capital_question")
        if text is None:
            return InputRequiredResult(
                input_requests={"capital_question": _sample("What is the capital of France?", 100)}
            )
        return _text(f"Sampling response: {text}")

    @server.tool(description="Asks the client for its roots via an input-required result")
    def test_input_required_result_list_roots(ctx: Context) -> CallToolResult | InputRequiredResult:
        roots = _roots(ctx.input_responses, "client_roots")
        if roots is None:
            return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})
        return _text(f"Client roots: {', '.join(roots) if roots else '(none)'}")

    @server.tool(description="Round-trips request state through an input-required result")
    def test_input_required_result_request_state(ctx: Context) -> CallToolResult | InputRequiredResult:
        confirm = _accepted_content(ctx.input_responses, "confirm")
        # The SDK seals request_state, so a state we get back is one we minted, untampered.
        if confirm is None or ctx.request_state != "awaiting-confirm":
            return InputRequiredResult(
                input_requests={
                    "confirm": _elicit(
                        "Please confirm",
                        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
                    )
                },
                request_state="awaiting-confirm",
            )
        return _text(f"state-ok: confirmed={confirm.get('ok')}")

    @server.tool(description="Asks for elicitation, sampling and roots at once")
    def test_input_required_result_multiple_inputs(ctx: Context) -> CallToolResult | InputRequiredResult:
        responses = ctx.input_responses
        name = _accepted_content(responses, "user_name")
        greeting = _sampled_text(responses, "greeting")
        roots = _roots(responses, "client_roots")
        if name is None or greeting is None or roots is None or ctx.request_state != "multiple-inputs":
            return InputRequiredResult(
                input_requests={
                    "user_name": _elicit("What is your name?", NAME_SCHEMA),
                    "greeting": _sample("Generate a greeting", 50),
                    "client_roots": ListRootsRequest(),
                },
                request_state="multiple-inputs",
            )
        return _text(f"name={name.get('name')}, greeting={greeting}, roots={len(roots)}")

    @server.tool(description="Three rounds: name, then colour, then the result")
    def test_input_required_result_multi_round(ctx: Context) -> CallToolResult | InputRequiredResult:
        responses = ctx.input_responses
        if ctx.request_state and ctx.request_state.startswith("round-2:"):
            color = _accepted_content(responses, "step2")
            name = ctx.request_state.removeprefix("round-2:")
            if color is not None:
                return _text(f"Hello {name}, your favorite color is {color.get('color')}")
        step1 = _accepted_content(responses, "step1")
        if ctx.request_state == "round-1" and step1 is not None:
            return InputRequiredResult(
                input_requests={
                    "step2": _elicit(
                        "Step 2: What is your favorite color?",
                        {
                            "type": "object",
                            "properties": {"color": {"type": "string"}},
                            "required": ["color"],
                        },
                    )
                },
                request_state=f"round-2:{step1.get('name')}",
            )
        return InputRequiredResult(
            input_requests={"step1": _elicit("Step 1: What is your name?", NAME_SCHEMA)},
            request_state="round-1",
        )

    @server.tool(description="Only asks for inputs the client declared it can provide")
    def test_input_required_result_capabilities(ctx: Context) -> CallToolResult | InputRequiredResult:
        caps = ctx.client_capabilities or ClientCapabilities()
        responses = ctx.input_responses
        if responses:
            return _text(f"Received {len(responses)} input response(s)")
        requests: dict[str, Any] = {}
        if caps.elicitation is not None:
            requests["user_name"] = _elicit("What is your name?", NAME_SCHEMA)
        if caps.sampling is not None:
            requests["greeting"] = _sample("Generate a greeting", 50)
        if caps.roots is not None:
            requests["client_roots"] = ListRootsRequest()
        if not requests:
            return _text("Client declared no input capabilities")
        return InputRequiredResult(input_requests=requests)

    @server.tool(description="Needs input; its sealed request state must come back untampered")
    def test_input_required_result_tampered_state(ctx: Context) -> CallToolResult | InputRequiredResult:
        # Integrity is the SDK's sealing (RequestStateBoundary): a modified state never reaches this code.
        if (
            ctx.request_state == "tamper-proof"
            and _accepted_content(ctx.input_responses, "confirm") is not None
        ):
            return _text("state verified")
        return InputRequiredResult(
            input_requests={
                "confirm": _elicit(
                    "Please confirm",
                    {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
                )
            },
            request_state="tamper-proof",
        )

    @server.tool(description="Requires the sampling capability (SEP-2575 -32021 check)")
    def test_missing_capability(ctx: Context) -> str:
        caps = ctx.client_capabilities
        if caps is None or caps.sampling is None:
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="This tool requires the client's sampling capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return "client declared sampling"

    @server.tool(description="Needs user input; on 2026-07-28 that is an input-required result on the stream")
    async def test_streaming_elicitation(ctx: Context) -> CallToolResult | InputRequiredResult:
        await ctx.report_progress(progress=0, total=1, message="asking the user")
        content = _accepted_content(ctx.input_responses, "user_name")
        if content is None:
            return InputRequiredResult(
                input_requests={"user_name": _elicit("What is your name?", NAME_SCHEMA)}
            )
        return _text(f"Hello, {content.get('name')}!")

    @server.tool(description="Changes the tool list, so list-changed subscribers are notified")
    async def test_trigger_tool_change(ctx: Context) -> str:
        await ctx.notify_tools_changed()
        return "tools list changed"

    @server.tool(description="Announces an update of test://watched-resource to its subscribers")
    async def test_trigger_resource_update(ctx: Context) -> str:
        # Not called by the suite: it lets the gateway tests check that resources/updated is relayed.
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await ctx.notify_resource_updated(WATCHED_URI)
        elif WATCHED_URI in state.subscriptions:
            await ctx.session.send_resource_updated(WATCHED_URI)
        return f"updated {WATCHED_URI}"

    @server.tool(description="Changes the prompt list, so list-changed subscribers are notified")
    async def test_trigger_prompt_change(ctx: Context) -> str:
        await ctx.notify_prompts_changed()
        return "prompts list changed"

    # ---- resources ------------------------------------------------------------------------------------
    @server.resource("test://static-text", name="static-text", mime_type="text/plain")
    def static_text() -> str:
        """A static text resource"""
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", name="static-binary", mime_type="image/png")
    def static_binary() -> bytes:
        """A static binary resource (a PNG image)"""
        return base64.b64decode(PNG_1X1)

    @server.resource("test://template/{id}/data", name="template-data", mime_type="application/json")
    def template_data(id: str) -> str:
        """A resource template with one parameter"""
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.resource(WATCHED_URI, name="watched-resource", mime_type="text/plain")
    def watched_resource() -> str:
        """A resource clients can subscribe to"""
        return "Watched resource content"

    # ---- prompts --------------------------------------------------------------------------------------
    @server.prompt(description="A simple prompt without arguments")
    def test_simple_prompt() -> list[dict[str, Any]]:
        return [{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]

    @server.prompt(description="A prompt with two required arguments")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[dict[str, Any]]:
        text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
        return [{"role": "user", "content": {"type": "text", "text": text}}]

    @server.prompt(description="A prompt that embeds a resource")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[dict[str, Any]]:
        return [
            {
                "role": "user",
                "content": {
                    "type": "resource",
                    "resource": {
                        "uri": resourceUri,
                        "mimeType": "text/plain",
                        "text": "Embedded resource content for testing.",
                    },
                },
            },
            {
                "role": "user",
                "content": {"type": "text", "text": "Please process the embedded resource above."},
            },
        ]

    @server.prompt(description="A prompt with an image")
    def test_prompt_with_image() -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": {"type": "image", "data": PNG_1X1, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
        ]

    @server.prompt(description="Needs context from the user first (SEP-2322 on prompts/get)")
    def test_input_required_result_prompt(ctx: Context) -> list[dict[str, Any]] | InputRequiredResult:
        content = _accepted_content(ctx.input_responses, "user_context")
        if content is None:
            return InputRequiredResult(
                input_requests={
                    "user_context": _elicit(
                        "What context should the prompt use?",
                        {
                            "type": "object",
                            "properties": {"context": {"type": "string"}},
                            "required": ["context"],
                        },
                    )
                }
            )
        return [{"role": "user", "content": {"type": "text", "text": f"Context: {content.get('context')}"}}]

    # ---- completion -----------------------------------------------------------------------------------
    # The SDK's completion() decorator carries no type annotations of its own.
    @server.completion()  # type: ignore[untyped-decorator, no-untyped-call]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        candidates = ["paris", "park", "party"] if argument.name == "arg1" else []
        values = [c for c in candidates if c.startswith(argument.value)]
        return Completion(values=values, total=len(values), has_more=False)

    _add_legacy_handlers(server, state)
    for name in omit:
        server.remove_tool(name)
    return server


def _schema_tools() -> list[Tool]:
    """Tools whose input schema must be exactly what the suite inspects, not what a signature would derive."""

    def json_schema_2020_12_tool(
        name: str | None = None,
        address: dict[str, Any] | None = None,
        contactMethod: str | None = None,
        phone: str | None = None,
        email: str | None = None,
    ) -> str:
        return json.dumps({"name": name, "address": address, "contactMethod": contactMethod, "phone": phone})

    def test_custom_header(region: str) -> str:
        return f"region={region}"

    schema_tool = Tool.from_function(
        json_schema_2020_12_tool, description="Tool with JSON Schema 2020-12 features"
    )
    header_tool = Tool.from_function(
        test_custom_header,
        description="Echoes a region that the client mirrors into the Mcp-Param-Region header (SEP-2243)",
    )
    header_schema = copy.deepcopy(header_tool.parameters)
    header_schema["properties"]["region"]["x-mcp-header"] = "Region"
    return [
        schema_tool.model_copy(update={"parameters": JSON_SCHEMA_2020_12}),
        header_tool.model_copy(update={"parameters": header_schema}),
    ]


def _add_legacy_handlers(server: MCPServer, state: FixtureState) -> None:
    """logging/setLevel and resources/(un)subscribe: handshake-era methods MCPServer has no decorator for.

    They are registered on the low-level server, which serves them only to 2025 sessions (2026-07-28
    removed them; the SDK answers those with 404 / -32601 there).
    """
    # MCPServer has no hook for these methods; add_request_handler on its low-level server is public API,
    # only the attribute that holds that server is private.
    lowlevel = server._lowlevel_server

    async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
        state.log_level = params.level
        return EmptyResult()

    async def subscribe(ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        state.subscriptions.add(str(params.uri))
        return EmptyResult()

    async def unsubscribe(ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        state.subscriptions.discard(str(params.uri))
        return EmptyResult()

    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)


def loopback_security(port: int) -> TransportSecuritySettings:
    """DNS-rebinding protection: only loopback Host and Origin values are served."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"],
        allowed_origins=[f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"],
    )


async def serve_http(host: str, port: int, omit: frozenset[str] = frozenset()) -> None:
    server = build_server(omit)
    app = server.streamable_http_app(
        event_store=InMemoryEventStore(),
        # A short retry interval keeps the SSE polling scenario fast; the suite checks that the client waits.
        retry_interval=100,
        transport_security=loopback_security(port),
        host=host,
    )
    # h11 trims the whitespace around header values (RFC 9110 §5.5), httptools keeps trailing
    # whitespace, and the SDK compares `Mcp-Name` as given: pinned so the fixture behaves the same
    # whichever parser is installed (the hub, which needs httptools for speed, trims values itself).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", http="h11")
    await uvicorn.Server(config).serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["http", "stdio"], default="http")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3301)
    parser.add_argument("--omit", action="append", default=[], metavar="TOOL", help="leave this tool out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # The fixture deliberately exercises logging, sampling and roots, which 2026-07-28 deprecates (SEP-2577);
    # the older revisions the suite tests still require them.
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    omit = frozenset(args.omit)
    if args.transport == "stdio":
        anyio.run(build_server(omit).run_stdio_async)
    else:
        anyio.run(serve_http, args.host, args.port, omit)


if __name__ == "__main__":
    main()
