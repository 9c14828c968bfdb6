"""The config, reauth, reconfigure and options flows, end to end over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from aiohttp import web
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_URL, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowResult,
    FlowResultType,
    InvalidData,
    section,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
import pytest
from pytest_aiohttp import AiohttpServer
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

import custom_components.sprecord
from custom_components.sprecord.api import CANDIDATES, SpRecordClient
from custom_components.sprecord.config_flow import (
    ADVANCED,
    REAUTH_SCHEMA,
    RECONFIGURE_SCHEMA,
    TITLE,
    USER_SCHEMA,
    account_id,
    without_userinfo,
)
from custom_components.sprecord.const import (
    AUTH_AUTO,
    CONF_AUTH_SCHEME,
    CONF_AUTODIAL,
    CONF_CALL_TIMEOUT,
    CONF_PHONEBOOK_FILE,
    CONF_TRANSPORT,
    DEFAULT_CALL_TIMEOUT_MINUTES,
    DEFAULT_URL,
    DOMAIN,
    TRANSPORT_BOTH,
    TRANSPORT_SSE,
    TRANSPORT_WEBHOOK,
)
from custom_components.sprecord.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.sprecord.flow_credentials import REDACTED_URL
from custom_components.sprecord.flow_options import (
    ADDRESS_SCHEMA,
    OPTIONS_SCHEMA,
    pbx_schema,
)
from emulator import DEFAULT_DEVICE_ID, SpRecordEmulator
from emulator.autodial import AutoDialEmulator

from .helpers import PBX_NAME, open_settings, set_options, wait_until

ROTATED_KEY = "rotated"
"""A second key of the emulator's `demo` account (the key after a rotation)."""
OTHER_KEY = "other"
"""The key of a second account, with a PBX of its own."""
OTHER_DEVICE_ID = "other-pbx"

STRINGS = json.loads(
    (Path(custom_components.sprecord.__file__).parent / "strings.json").read_text(
        encoding="utf-8"
    )
)


def credentials(entry: ConfigEntry) -> dict[str, Any]:
    """Return the URL and key an entry holds (its data has more)."""
    return {key: entry.data[key] for key in (CONF_URL, CONF_API_KEY)}


@pytest.fixture
def accounts(emulator: SpRecordEmulator) -> None:
    """Give the emulator a rotated key for `demo` and a second account."""
    emulator.accounts[ROTATED_KEY] = DEFAULT_DEVICE_ID
    emulator.accounts[OTHER_KEY] = OTHER_DEVICE_ID


def suggested_values(result: FlowResult) -> dict[str, Any]:
    """Return the values a form shows prefilled (a section's under its key)."""
    schema: vol.Schema = result["data_schema"]
    values: dict[str, Any] = {
        str(key): key.description["suggested_value"]
        for key in schema.schema
        if key.description and "suggested_value" in key.description
    }
    for key, value in schema.schema.items():
        if isinstance(value, section):
            inner = suggested_values({"data_schema": value.schema})  # type: ignore[typeddict-item]
            if inner:
                values[str(key)] = inner
    return values


async def start_user_flow(hass: HomeAssistant) -> FlowResult:
    """Open the user step and check it shows an empty form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return result


async def unload(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Unload an entry the test set up (no task or timer may linger)."""
    await hass.async_block_till_done()
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def finish_user_flow(
    hass: HomeAssistant, flow_id: str, emulator: SpRecordEmulator
) -> None:
    """Recover a flow with good input: the entry is created, set up, unloaded."""
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert credentials(result["result"]) == {
        CONF_URL: emulator.url,
        CONF_API_KEY: "demo",
    }
    assert result["result"].unique_id == account_id("demo")
    await unload(hass, result["result"])


async def finish_reconfigure(
    hass: HomeAssistant,
    flow_id: str,
    entry: ConfigEntry,
    emulator: SpRecordEmulator,
) -> None:
    """Reconfigure to the bare URL: it is saved, and the stream opens again."""
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == emulator.url
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)


# --- user step ------------------------------------------------------------


async def test_user_flow(hass: HomeAssistant, emulator: SpRecordEmulator) -> None:
    result = await start_user_flow(hass)
    # The URL defaults to the SpRecord cloud; the key has no default.
    assert result["data_schema"]({CONF_API_KEY: "k"}) == {
        CONF_URL: DEFAULT_URL,
        CONF_API_KEY: "k",
    }
    assert suggested_values(result) == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"{emulator.url}/", CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == TITLE
    assert set(result["data"]) == {
        CONF_URL,
        CONF_API_KEY,
        CONF_AUTH_SCHEME,
        CONF_WEBHOOK_ID,
    }
    assert result["data"][CONF_AUTH_SCHEME] == "bearer"  # the emulator's default
    entry = result["result"]
    # A webhook id is made once, for the webhook transport should it be chosen.
    assert re.fullmatch(r"[0-9a-f]{64}", entry.data[CONF_WEBHOOK_ID])
    assert entry.title == TITLE
    assert entry.unique_id == account_id("demo")
    assert "demo" not in entry.unique_id
    assert entry.data[CONF_API_KEY] == "demo"
    assert entry.data[CONF_URL] == emulator.url
    assert not entry.options
    # The flow's check opened one stream; the new entry holds the next one.
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await wait_until(lambda: emulator.open_streams("demo") == 1)
    assert emulator.stats.connects == 2
    await unload(hass, entry)


@pytest.mark.parametrize(
    "url",
    [
        "api.sprecord.cloud",
        "ftp://api.sprecord.cloud",
        "http://",
        "https://api.sprecord.cloud/?key=demo",
        "https://api.sprecord.cloud/#events",
        "http://127.0.0.1:99999",
    ],
)
async def test_user_flow_invalid_url(
    hass: HomeAssistant, emulator: SpRecordEmulator, url: str
) -> None:
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "invalid_url"}
    # What the user typed stays in the form.
    assert suggested_values(result) == {CONF_URL: url, CONF_API_KEY: "demo"}
    assert emulator.stats.connects == emulator.stats.rejected_auth == 0

    await finish_user_flow(hass, result["flow_id"], emulator)


@pytest.mark.parametrize(
    ("url", "key", "error"),
    [
        ("{emulator}", "wrong", "invalid_auth"),
        ("{emulator}/nope", "demo", "not_sprecord"),
        ("http://127.0.0.1:{port}", "demo", "cannot_connect"),
    ],
    ids=["wrong_key", "path_not_found", "port_closed"],
)
async def test_user_flow_errors(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    unused_tcp_port: int,
    *,
    url: str,
    key: str,
    error: str,
) -> None:
    url = url.format(emulator=emulator.url, port=unused_tcp_port)
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_KEY: key}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": error}
    assert suggested_values(result) == {CONF_URL: url, CONF_API_KEY: key}

    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_user_flow_refused_key(
    hass: HomeAssistant, emulator: SpRecordEmulator
) -> None:
    emulator.refuse_key("demo")
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    # Refused every usual way (no /openapi.json says which): a wrong key.
    assert emulator.stats.rejected_auth == len(CANDIDATES)
    assert emulator.open_streams() == 0

    emulator.refuse_key("demo", refuse=False)
    await finish_user_flow(hass, result["flow_id"], emulator)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, "cannot_connect"),
        (502, "cannot_connect"),
        (503, "cannot_connect"),
        (400, "cannot_connect"),
        (404, "not_sprecord"),
        (405, "not_sprecord"),
        (401, "invalid_auth"),
        (403, "invalid_auth"),
        (429, "too_many_connections"),
    ],
)
async def test_user_flow_http_error(
    hass: HomeAssistant, emulator: SpRecordEmulator, status: int, error: str
) -> None:
    emulator.fail_streams(status)
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert emulator.stats.rejected_forced == 1

    # The failure was a one-off: the same input now works.
    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_user_flow_too_many_connections(
    hass: HomeAssistant, emulator: SpRecordEmulator
) -> None:
    client = SpRecordClient(async_get_clientsession(hass), emulator.url, "demo")
    result = await start_user_flow(hass)

    async with AsyncExitStack() as streams:
        for _ in range(emulator.max_streams):
            await streams.enter_async_context(await client.connect())
        assert emulator.open_streams("demo") == 3

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
        )

        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "too_many_connections"}
        assert emulator.stats.rejected_busy == 1

    # The other clients went away: a stream is free again.
    await wait_until(lambda: emulator.open_streams("demo") == 0)
    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_user_flow_not_an_event_stream(
    hass: HomeAssistant, emulator: SpRecordEmulator, aiohttp_server: AiohttpServer
) -> None:
    async def web_page(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Hello</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", web_page)
    server = await aiohttp_server(app, host="127.0.0.1")
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: f"http://127.0.0.1:{server.port}", CONF_API_KEY: "demo"},
    )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_sprecord"}

    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_user_flow_timeout(
    hass: HomeAssistant, emulator: SpRecordEmulator, aiohttp_server: AiohttpServer
) -> None:
    answer = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await answer.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/sys/events", silent)
    server = await aiohttp_server(app, host="127.0.0.1")
    result = await start_user_flow(hass)

    with patch("custom_components.sprecord.flow_credentials.VALIDATE_TIMEOUT", 0.05):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_URL: f"http://127.0.0.1:{server.port}", CONF_API_KEY: "demo"},
        )
    answer.set()

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_user_flow_unknown_error(
    hass: HomeAssistant, emulator: SpRecordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    result = await start_user_flow(hass)

    with patch(
        "custom_components.sprecord.flow_credentials.SpRecordClient.verify",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
        )

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while checking the SpRecord credentials" in caplog.text
    assert "boom" in caplog.text
    # The key never reaches the log.
    assert "Bearer" not in caplog.text

    await finish_user_flow(hass, result["flow_id"], emulator)


@pytest.mark.parametrize(
    "unique_id",
    [account_id("demo"), "set-up-by-an-older-version"],
    ids=["same_unique_id", "same_key_in_data"],
)
async def test_user_flow_already_configured(
    hass: HomeAssistant, emulator: SpRecordEmulator, unique_id: str
) -> None:
    MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={CONF_URL: "https://pbx.example.com", CONF_API_KEY: "demo"},
        unique_id=unique_id,
    ).add_to_hass(hass)
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # It aborts before it asks the server anything.
    assert emulator.stats.connects == emulator.stats.rejected_auth == 0
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_user_flow_second_account(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    accounts: None,
) -> None:
    config_entry.add_to_hass(hass)
    result = await start_user_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: OTHER_KEY}
    )

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == account_id(OTHER_KEY)
    assert result["result"].unique_id != config_entry.unique_id
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2
    await unload(hass, result["result"])


# --- reauth ---------------------------------------------------------------


async def test_reauth_flow(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    accounts: None,
) -> None:
    result = await setup_entry.start_reauth_flow(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {
        "url": emulator.url,
        "name": TITLE,
    }
    assert suggested_values(result) == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "wrong"}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": "invalid_auth"}
    assert result["description_placeholders"]["url"] == emulator.url
    assert setup_entry.data[CONF_API_KEY] == "demo"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: ROTATED_KEY}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert credentials(setup_entry) == {
        CONF_URL: emulator.url,
        CONF_API_KEY: ROTATED_KEY,
    }
    # The entry reloads and reconnects with the new key.
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    await wait_until(lambda: emulator.open_streams(ROTATED_KEY) == 1)
    await wait_until(lambda: emulator.open_streams("demo") == 0)
    await unload(hass, setup_entry)


async def test_reauth_after_the_server_refuses_the_key(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    accounts: None,
) -> None:
    # The key is revoked: the integration asks for a new one by itself.
    emulator.refuse_key("demo")
    await wait_until(lambda: any(setup_entry.async_get_active_flows(hass, {"reauth"})))
    await hass.async_block_till_done()
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["step_id"] == "reauth_confirm"
    assert flow["context"]["entry_id"] == setup_entry.entry_id

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_API_KEY: "demo"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_API_KEY: ROTATED_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert setup_entry.data[CONF_API_KEY] == ROTATED_KEY
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    await wait_until(lambda: emulator.open_streams(ROTATED_KEY) == 1)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    await unload(hass, setup_entry)


async def test_reauth_flow_key_of_another_entry(
    hass: HomeAssistant, emulator: SpRecordEmulator, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={CONF_URL: emulator.url, CONF_API_KEY: "revoked"},
        unique_id=account_id("revoked"),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_API_KEY] == "revoked"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert config_entry.state is ConfigEntryState.NOT_LOADED


# --- reconfigure ----------------------------------------------------------


async def test_reconfigure_flow(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    accounts: None,
) -> None:
    # A second server with the rotated key, to move the entry to.
    moved = SpRecordEmulator(keepalive=0, accounts={ROTATED_KEY: DEFAULT_DEVICE_ID})
    await moved.start()
    try:
        result = await setup_entry.start_reconfigure_flow(hass)

        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "reconfigure"
        assert result["errors"] == {}
        assert suggested_values(result) == {
            ADVANCED: {CONF_AUTH_SCHEME: AUTH_AUTO},
            CONF_URL: emulator.url,
            CONF_API_KEY: "demo",
        }

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: "api.sprecord.cloud", CONF_API_KEY: "demo"}
        )

        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_URL: "invalid_url"}
        assert suggested_values(result) == {
            ADVANCED: {CONF_AUTH_SCHEME: AUTH_AUTO},  # the section's default
            CONF_URL: "api.sprecord.cloud",
            CONF_API_KEY: "demo",
        }

        # The old key is not valid on the new server.
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: moved.url, CONF_API_KEY: "demo"}
        )

        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "invalid_auth"}
        assert credentials(setup_entry) == {
            CONF_URL: emulator.url,
            CONF_API_KEY: "demo",
        }

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: f"{moved.url}/", CONF_API_KEY: ROTATED_KEY}
        )

        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        assert credentials(setup_entry) == {
            CONF_URL: moved.url,
            CONF_API_KEY: ROTATED_KEY,
        }
        await hass.async_block_till_done()
        assert setup_entry.state is ConfigEntryState.LOADED
        await wait_until(lambda: moved.open_streams(ROTATED_KEY) == 1)
        await wait_until(lambda: emulator.open_streams() == 0)
        await unload(hass, setup_entry)
    finally:
        await moved.stop()


async def test_reconfigure_flow_key_of_another_entry(
    hass: HomeAssistant, emulator: SpRecordEmulator, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={CONF_URL: "https://pbx.example.com", CONF_API_KEY: "other"},
        unique_id=account_id("other"),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert credentials(entry) == {
        CONF_URL: "https://pbx.example.com",
        CONF_API_KEY: "other",
    }
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_reconfigure_to_another_account_frees_the_first(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    accounts: None,
) -> None:
    config_entry.add_to_hass(hass)
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: OTHER_KEY}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    try:
        # No entry uses the `demo` key any more: adding it must be possible.
        result = await start_user_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        # The old entry keeps its unique id (and its entities theirs).
        assert config_entry.unique_id == account_id("demo")
        assert result["result"].unique_id not in (account_id("demo"), None)
        await unload(hass, result["result"])
    finally:
        await unload(hass, config_entry)


# --- options --------------------------------------------------------------


async def test_options_flow(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    # The options open on a menu: the entry's settings, or a PBX's address.
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["settings", "local_autodial"]
    texts = STRINGS["options"]["step"]["init"]
    assert set(texts["menu_options"]) == {"settings", "local_autodial"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "settings"}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "settings"
    assert result["data_schema"]({}) == {
        CONF_TRANSPORT: TRANSPORT_SSE,
        CONF_CALL_TIMEOUT: DEFAULT_CALL_TIMEOUT_MINUTES,
    }
    assert suggested_values(result) == {}
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_CALL_TIMEOUT: 1}
        )

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CALL_TIMEOUT: "30"}
    )

    expected = {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 30}
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected
    assert type(setup_entry.options[CONF_CALL_TIMEOUT]) is int
    assert setup_entry.options == expected
    # New options reload the entry, which then runs with them.
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    assert setup_entry.runtime_data.coordinator.options == expected

    result = await open_settings(hass, setup_entry)
    assert suggested_values(result) == expected
    hass.config_entries.options.async_abort(result["flow_id"])
    await unload(hass, setup_entry)


# --- texts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "step", "schema"),
    [
        ("config", "user", USER_SCHEMA),
        ("config", "reauth_confirm", REAUTH_SCHEMA),
        ("config", "reconfigure", RECONFIGURE_SCHEMA),
        ("options", "settings", OPTIONS_SCHEMA),
        ("options", "local_autodial", pbx_schema({"id": "PBX"})),
        ("options", "autodial_address", ADDRESS_SCHEMA),
    ],
)
def test_every_field_is_described(part: str, step: str, schema: vol.Schema) -> None:
    texts = STRINGS[part]["step"][step]
    sections = {
        str(key): value.schema
        for key, value in schema.schema.items()
        if isinstance(value, section)
    }
    fields = {str(key) for key in schema.schema} - set(sections)
    assert set(texts["data"]) == fields
    assert set(texts["data_description"]) == fields
    assert all(texts["data_description"].values())
    for name, inner in sections.items():
        described = texts["sections"][name]
        assert described["name"]
        inner_fields = {str(key) for key in inner.schema}
        assert set(described["data"]) == inner_fields
        assert set(described["data_description"]) == inner_fields


def test_every_error_and_abort_has_a_text() -> None:
    config = STRINGS["config"]
    assert set(config["error"]) >= {
        "invalid_url",
        "invalid_auth",
        "cannot_connect",
        "too_many_connections",
        "not_sprecord",
        "unknown",
    }
    assert set(config["abort"]) >= {
        "already_configured",
        "reauth_successful",
        "reconfigure_successful",
    }
    assert "{url}" in config["step"]["reauth_confirm"]["description"]


# --- how the key is sent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "openapi", "probes"),
    [
        ("bearer", False, 1),
        ("header:X-API-Key", False, 2),
        ("query:token", False, 3),
        ("query:api_key", False, 4),
        # Declared in /openapi.json: found from the document, not the list.
        ("header:X-Sprecord-Key", True, 1),
        ("query:key", True, 1),
    ],
)
async def test_the_way_the_key_is_sent_is_found_out(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    scheme: str,
    openapi: bool,
    probes: int,
) -> None:
    emulator.set_auth_scheme(scheme, openapi=openapi)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    wrong = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "wrong"}
    )
    assert wrong["errors"] == {"base": "invalid_auth"}
    assert emulator.open_streams() == 0
    refused = emulator.stats.rejected_auth
    assert refused == (1 if openapi else len(CANDIDATES))

    done = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["data"][CONF_AUTH_SCHEME] == scheme
    assert emulator.stats.rejected_auth - refused == probes - 1
    assert emulator.stats.max_open_streams == 1  # one probe at a time

    # The entry sends the key only that way, and streams.
    entry = done["result"]
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    rejected = emulator.stats.rejected_auth
    emulator.emit("startup")
    stats = entry.runtime_data.link.stats
    await wait_until(lambda: stats.events_by_type["startup"] == 1)
    assert emulator.stats.rejected_auth == rejected
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["link"]["auth_scheme"] == scheme
    assert "demo" not in json.dumps(diagnostics)
    await unload(hass, entry)


async def test_reconfigure_can_set_the_way_the_key_is_sent(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    emulator.set_auth_scheme("header:X-Key")
    result = await setup_entry.start_reconfigure_flow(hass)
    assert suggested_values(result)[ADVANCED] == {CONF_AUTH_SCHEME: AUTH_AUTO}
    data = {CONF_URL: emulator.url, CONF_API_KEY: "demo"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**data, ADVANCED: {CONF_AUTH_SCHEME: "cookie:x"}}
    )
    assert result["errors"] == {CONF_AUTH_SCHEME: "invalid_auth_scheme"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**data, ADVANCED: {CONF_AUTH_SCHEME: "query:token"}}
    )
    assert result["errors"] == {"base": "invalid_auth"}  # not the server's way
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**data, ADVANCED: {CONF_AUTH_SCHEME: " header:X-Key "}}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert setup_entry.data[CONF_AUTH_SCHEME] == "header:X-Key"
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    await unload(hass, setup_entry)


# --- a password in the server URL ----------------------------------------


def with_password(url: str) -> str:
    """Return `url` with a user name and password in it."""
    return url.replace("http://", "http://admin:s3cret@", 1)


@pytest.mark.parametrize(
    "userinfo", ["admin:s3cret@", "admin@", ":s3cret@", "ad%40min:s3%3Acret@"]
)
async def test_user_flow_refuses_a_password_in_the_url(
    hass: HomeAssistant, emulator: SpRecordEmulator, userinfo: str
) -> None:
    result = await start_user_flow(hass)
    url = emulator.url.replace("http://", f"http://{userinfo}", 1)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url, CONF_API_KEY: "demo"}
    )

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {CONF_URL: "url_has_credentials"}
    # Refused before anything is sent anywhere.
    assert emulator.stats.connects == emulator.stats.rejected_auth == 0
    assert "user:password@" in STRINGS["config"]["error"]["url_has_credentials"]

    await finish_user_flow(hass, result["flow_id"], emulator)


async def test_reconfigure_refuses_a_password_in_the_url(
    hass: HomeAssistant, emulator: SpRecordEmulator, setup_entry: MockConfigEntry
) -> None:
    result = await setup_entry.start_reconfigure_flow(hass)
    data = {CONF_URL: with_password(emulator.url), CONF_API_KEY: "demo"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], data)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "url_has_credentials"}
    # Both mistakes at once are both named.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**data, ADVANCED: {CONF_AUTH_SCHEME: "cookie:x"}}
    )
    assert result["errors"] == {
        CONF_URL: "url_has_credentials",
        CONF_AUTH_SCHEME: "invalid_auth_scheme",
    }
    assert setup_entry.data[CONF_URL] == emulator.url

    await finish_reconfigure(hass, result["flow_id"], setup_entry, emulator)
    await unload(hass, setup_entry)


@pytest.fixture
async def entry_with_password(
    hass: HomeAssistant, emulator: SpRecordEmulator
) -> AsyncIterator[MockConfigEntry]:
    """Set up an entry saved before the flow refused a password in the URL.

    The key goes in a header of its own, so the server still takes it.
    """
    emulator.set_auth_scheme("header:X-API-Key")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={
            CONF_URL: with_password(emulator.url),
            CONF_API_KEY: "demo",
            CONF_AUTH_SCHEME: "header:X-API-Key",
        },
        unique_id=account_id("demo"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    yield entry
    await unload(hass, entry)


async def test_a_saved_password_in_the_url_is_never_shown(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry_with_password: MockConfigEntry,
) -> None:
    entry = entry_with_password
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert "s3cret" not in json.dumps(diagnostics)
    assert "admin" not in json.dumps(diagnostics)
    assert diagnostics["entry"]["data"][CONF_URL] == emulator.url
    assert diagnostics["link"]["server"] == emulator.url

    # The reauth form names the server without the password.
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["url"] == emulator.url
    hass.config_entries.flow.async_abort(result["flow_id"])

    # Reconfigure offers the URL without the password, which then works.
    result = await entry.start_reconfigure_flow(hass)
    assert suggested_values(result)[CONF_URL] == emulator.url
    await finish_reconfigure(hass, result["flow_id"], entry, emulator)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://a:b@api.sprecord.cloud/v1", "https://api.sprecord.cloud/v1"),
        ("https://api.sprecord.cloud", "https://api.sprecord.cloud"),
        ("http://a:b@[::1", REDACTED_URL),
        ("relative", REDACTED_URL),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert without_userinfo(url) == shown


# --- local auto-dial addresses ---------------------------------------------


async def save_options(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> FlowResult:
    """Open the settings and submit `user_input`; return the flow's result."""
    result = await open_settings(hass, entry)
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )


async def open_local_autodial(
    hass: HomeAssistant, entry: MockConfigEntry
) -> FlowResult:
    """Open the options' local auto-dial item; return what it shows."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "local_autodial"}
    )


def pbx_choices(result: FlowResult) -> list[tuple[str, str]]:
    """Return the PBXs a pick offers: (value, label)."""
    [selector] = result["data_schema"].schema.values()
    return [(option["value"], option["label"]) for option in selector.config["options"]]


def pbx_devices(hass: HomeAssistant, entry: MockConfigEntry) -> list[dr.DeviceEntry]:
    """Return the entry's PBX devices (not their lines)."""
    registry = dr.async_get(hass)
    return [
        device
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.via_device_id is None
    ]


async def test_a_pbx_is_picked_by_its_id_and_shown_by_its_name(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    # The first PBX to send an event is the entry's own; then a second one.
    emulator.emit("startup")
    emulator.emit("startup", device_id=emulator.add_pbx())
    await wait_until(lambda: len(pbx_devices(hass, setup_entry)) == 2)
    first, second = pbx_devices(hass, setup_entry)
    [(_, first_id)] = first.identifiers
    [(_, second_id)] = second.identifiers
    registry = dr.async_get(hass)
    registry.async_update_device(second.id, name_by_user="Second office")

    # Two PBXs: the pick offers each by its device's name; the value is its id.
    result = await open_local_autodial(hass, setup_entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "local_autodial"
    assert pbx_choices(result) == [
        (first_id, PBX_NAME),
        (second_id, "Second office"),
    ]
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"pbx": "Second office"}
        )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"pbx": second_id}
    )
    assert result["step_id"] == "autodial_address"
    assert result["description_placeholders"] == {
        "pbx": "Second office",
        "address": "",
    }
    assert suggested_values(result) == {}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"address": "not an address"}
    )
    assert result["errors"] == {"address": "autodial_invalid_address"}
    assert result["description_placeholders"] == {
        "pbx": "Second office",
        "address": "not an address",
    }
    assert suggested_values(result) == {"address": "not an address"}
    address = f"127.0.0.1:{dialer.port}"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"address": address}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options == {CONF_AUTODIAL: {second_id: address}}

    # Renamed: the pick shows the new name, the address is still the PBX's.
    registry.async_update_device(second.id, name_by_user="Warehouse")
    result = await open_local_autodial(hass, setup_entry)
    assert pbx_choices(result) == [(first_id, PBX_NAME), (second_id, "Warehouse")]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"pbx": second_id}
    )
    assert result["description_placeholders"]["pbx"] == "Warehouse"
    assert suggested_values(result) == {"address": address}
    # Emptied: the address goes, and with it the option.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"address": " "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options == {}
    await unload(hass, setup_entry)


async def test_a_saved_address_of_a_pbx_that_is_off_does_not_block_the_options(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    setup_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> None:
    address = f"127.0.0.1:{dialer.port}"
    result = await set_options(hass, setup_entry, {PBX_NAME: address})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    prefix = setup_entry.runtime_data.coordinator.primary.unique_prefix
    assert setup_entry.options[CONF_AUTODIAL] == {prefix: address}
    checks = dialer.stats.requests
    await dialer.stop()  # the PBX is switched off

    # A changed address is checked: unreachable, it is refused.
    # The cloud emulator answers HTTP, but not as the auto-dial API.
    elsewhere = emulator.url.removeprefix("http://")
    result = await set_options(hass, setup_entry, {PBX_NAME: elsewhere})
    assert result["errors"] == {"base": "autodial_unreachable"}
    assert result["description_placeholders"] == {
        "pbx": PBX_NAME,
        "address": elsewhere,
    }
    # The saved address, given again, is not checked: it is kept.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"address": f" {address} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_entry.options[CONF_AUTODIAL] == {prefix: address}
    # The other options save, and keep the address, unchecked.
    await hass.async_add_executor_job(
        Path(hass.config.path("contacts.vcf")).write_text,
        "BEGIN:VCARD\nVERSION:3.0\nFN:Mum\nTEL:+79161234567\nEND:VCARD\n",
        "utf-8",
    )
    result = await save_options(
        hass,
        setup_entry,
        {
            CONF_TRANSPORT: TRANSPORT_SSE,
            CONF_CALL_TIMEOUT: 60,
            CONF_PHONEBOOK_FILE: "contacts.vcf",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options == {
        CONF_TRANSPORT: TRANSPORT_SSE,
        CONF_CALL_TIMEOUT: 60,
        CONF_PHONEBOOK_FILE: "contacts.vcf",
        CONF_AUTODIAL: {prefix: address},
    }
    assert dialer.stats.requests == checks
    await unload(hass, setup_entry)


async def test_an_entry_without_a_pbx_has_no_address_to_set(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Never set up, the entry knows no PBX yet; its settings still save."""
    config_entry.add_to_hass(hass)
    result = await open_local_autodial(hass, config_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_pbxs"
    assert "sends an event" in STRINGS["options"]["abort"]["no_pbxs"]

    result = await save_options(
        hass, config_entry, {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 30}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {
        CONF_TRANSPORT: TRANSPORT_SSE,
        CONF_CALL_TIMEOUT: 30,
    }
    # The newest Home Assistant loads an entry whose options were saved.
    await unload(hass, config_entry)


# --- the webhook replaces the account's hook ----------------------------------


@pytest.fixture
async def sse_entry(
    hass: HomeAssistant, ha_url: str, emulator: SpRecordEmulator, fast_link: None
) -> AsyncIterator[MockConfigEntry]:
    """Set up an entry that reads the stream and could take a webhook."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        data={CONF_URL: emulator.url, CONF_API_KEY: "demo", CONF_WEBHOOK_ID: "hook"},
        options={CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180},
        unique_id=account_id("demo"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    yield entry
    await unload(hass, entry)


@pytest.mark.parametrize("transport", [TRANSPORT_WEBHOOK, TRANSPORT_BOTH])
async def test_turning_the_webhook_on_asks_first(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    sse_entry: MockConfigEntry,
    transport: str,
) -> None:
    wanted = {CONF_TRANSPORT: transport, CONF_CALL_TIMEOUT: 30}
    result = await save_options(hass, sse_entry, wanted)

    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "webhook_confirm"
    assert result["menu_options"] == ["webhook_replace", "webhook_back"]
    texts = STRINGS["options"]["step"]["webhook_confirm"]
    assert "one webhook per account" in texts["description"]
    assert set(texts["menu_options"]) == {"webhook_replace", "webhook_back"}

    # Going back saves nothing and shows the form as it was filled in.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "webhook_back"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "settings"
    assert result["errors"] == {}
    assert suggested_values(result) == wanted
    await hass.async_block_till_done()
    assert sse_entry.options[CONF_TRANSPORT] == TRANSPORT_SSE
    assert emulator.hooks.get("demo") is None

    # Asked again; this time the user replaces the hook.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], wanted
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "webhook_replace"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert sse_entry.options == wanted
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.hooks.get("demo") is not None)

    # The hook is ours already: another webhook mode saves without asking.
    other = TRANSPORT_BOTH if transport == TRANSPORT_WEBHOOK else TRANSPORT_WEBHOOK
    result = await save_options(
        hass, sse_entry, {CONF_TRANSPORT: other, CONF_CALL_TIMEOUT: 30}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert sse_entry.options[CONF_TRANSPORT] == other
    await hass.async_block_till_done()
