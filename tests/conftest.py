"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
import platform
import re
import sys
from unittest.mock import PropertyMock, patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY, CONF_URL, __version__ as HA_VERSION  # noqa: N812
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

# Import the integration before the harness mounts its own test config, whose
# `custom_components` package would otherwise hide ours.
import custom_components.sprecord  # noqa: F401
from custom_components.sprecord import (
    autodial as autodial_module,
    link as link_module,
    reconnect as reconnect_module,
)
from custom_components.sprecord.config_flow import account_id
from custom_components.sprecord.const import DOMAIN
from emulator import SpRecordEmulator
from emulator.autodial import AutoDialEmulator

from .helpers import PBX_NAME, set_options, wait_until

OUR_CODE = re.compile(
    r"custom_components/sprecord\b|integration '?sprecord\b|\bsprecord'"
)
"""A log message that names this integration or a file of it."""
DEPRECATION = re.compile(
    r"stop working in Home Assistant|deprecated|will be removed", re.IGNORECASE
)
"""Home Assistant's wording for a deprecation report (helpers.frame and
helpers.deprecation)."""


class DeprecationReports(logging.Handler):
    """Collect Home Assistant's deprecation reports that name our code."""

    def __init__(self) -> None:
        """Collect from WARNING up."""
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record when it is a report about this integration."""
        if not record.name.startswith("homeassistant"):
            return
        message = record.getMessage()
        if DEPRECATION.search(message) and OUR_CODE.search(message):
            self.reports.append(f"{record.name}: {message}")


def pytest_report_header() -> str:
    """Name the Home Assistant and the Python the suite runs on."""
    return f"Home Assistant {HA_VERSION} on Python {platform.python_version()}"


@pytest.fixture(autouse=True)
def _no_deprecation_reports() -> Iterator[DeprecationReports]:
    """Fail a test during which Home Assistant reports our code as deprecated.

    Home Assistant logs such a report ("... will stop working in Home
    Assistant 2026.12 ...") long before the call breaks; only running on the
    newest release shows them, and this makes them failures at both ends.
    """
    handler = DeprecationReports()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    if handler.reports:
        pytest.fail(
            "Home Assistant reported our code as deprecated:\n"
            + "\n".join(handler.reports),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load this repository's integration in hass tests.

    A test with the recorder gets it first: the recorder must be configured
    before Home Assistant is made.
    """
    if "recorder_mock" in request.fixturenames:
        request.getfixturevalue("recorder_mock")
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[SpRecordEmulator]:
    """Serve an emulated SpRecord cloud on 127.0.0.1 (no keep-alives)."""
    emu = SpRecordEmulator(keepalive=0)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def ha_url(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> str:
    """Serve Home Assistant's HTTP on 127.0.0.1 and make it the external URL."""
    assert await async_setup_component(hass, "webhook", {})
    client = await hass_client_no_auth()
    url = str(client.make_url("/")).rstrip("/")
    await hass.config.async_update(external_url=url)
    return url


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshot with Home Assistant's extension (registry ids are ignored)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create entities that are disabled by default as enabled."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def fast_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make reconnect delays short so link tests run in milliseconds."""
    monkeypatch.setattr(reconnect_module, "BACKOFF_MIN", 0.01)
    monkeypatch.setattr(reconnect_module, "BACKOFF_MAX", 0.05)
    monkeypatch.setattr(reconnect_module, "BUSY_BACKOFF_MIN", 0.05)
    monkeypatch.setattr(reconnect_module, "BUSY_BACKOFF_MAX", 0.1)
    monkeypatch.setattr(link_module, "HANDOVER", 0.3)


@pytest.fixture
def patient_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never time the stream out (for tests that move a frozen clock by hours)."""
    monkeypatch.setattr(link_module, "STREAM_READ_TIMEOUT", 30 * 86400.0)


@pytest.fixture
def config_entry(emulator: SpRecordEmulator) -> MockConfigEntry:
    """Return a config entry for the emulator's `demo` account."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="SpRecord MiniPBX",
        data={CONF_URL: emulator.url, CONF_API_KEY: "demo"},
        unique_id=account_id("demo"),
    )


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> AsyncIterator[MockConfigEntry]:
    """Set the entry up against the emulator; unload it afterwards."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_until(lambda: emulator.open_streams() == 1)
    yield config_entry
    if config_entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
async def dialer(socket_enabled: None) -> AsyncIterator[AutoDialEmulator]:
    """Serve a PBX's local auto-dial API on 127.0.0.1."""
    emulator = AutoDialEmulator(step=0.02)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll a running auto-dial task every 20 ms instead of every 5 s."""
    monkeypatch.setattr(autodial_module, "POLL_INTERVAL", 0.02)


@pytest.fixture
async def autodial_entry(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    dialer: AutoDialEmulator,
) -> MockConfigEntry:
    """Return a loaded entry whose PBX's local address is the emulator's."""
    result = await set_options(
        hass, setup_entry, {PBX_NAME: f"127.0.0.1:{dialer.port}"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_entry.state is ConfigEntryState.LOADED
    return setup_entry


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the fault-injection summary when the fault suite ran."""
    faults = sys.modules.get("tests.test_faults")
    results = getattr(faults, "RESULTS", None)
    if not results:
        return
    kinds = {kind for kind, _server in results}
    repetitions = max(r["repetitions"] for r in results.values())
    fewer = sorted(
        {f"{k}: {r['repetitions']}" for (k, _s), r in results.items()}
        - {f"{k}: {repetitions}" for k in kinds}
    )
    failed = sorted(f"{k}/{s}" for (k, s), r in results.items() if not r["passed"])
    streams = max(r.get("max_streams", 0) for r in results.values())
    write = terminalreporter.write_line
    # Every row, pass or fail; "faults:" starts each line (scripts/test keeps
    # those of the suite's output).
    write(
        "faults: kind/server                  reps  before  during (in gap) lost"
        "  after lost  dup  reconnects  seen  streams  result"
    )
    for (kind, server), r in sorted(results.items()):
        write(
            f"faults: {kind + '/' + server:<36} {r['repetitions']:>4}"
            f"  {r['sent_before']:>6}  {r['sent_during']:>6} ({r['sent_in_gap']:>6})"
            f" {r['lost_during']:>4}  {r['sent_after']:>5} {r['lost_after']:>4}"
            f"  {r['duplicates']:>3}  {r['reconnects']:>10}  {r['faults_seen']:>4}"
            f"  {r.get('max_streams', 0):>7}  {'passed' if r['passed'] else 'FAILED'}"
        )
    parts = []
    for server in ("resuming", "not_resuming"):
        rows = [r for (_kind, s), r in results.items() if s == server]
        if rows:
            parts.append(
                f"{server.replace('_', ' ')} server: lost "
                f"{sum(r['lost_during'] for r in rows)} of "
                f"{sum(r['sent_during'] for r in rows)} sent during faults "
                f"({sum(r['sent_in_gap'] for r in rows)} of them inside a "
                f"reconnect gap), {sum(r['lost_after'] for r in rows)} of "
                f"{sum(r['sent_after'] for r in rows)} sent after"
            )
    for server in ("resuming", "not_resuming"):
        rows = [
            r for (_kind, s), r in results.items() if s == server and "in_progress" in r
        ]
        if rows:
            name = server.replace("_", " ")
            parts.append(
                f"calls in progress at a restart shown again ({name} server): "
                f"{sum(r['shown_again'] for r in rows)} of "
                f"{sum(r['in_progress'] for r in rows)}"
            )
    duplicates = sum(r["duplicates"] for r in results.values())
    shares = [
        f"{server.replace('_', ' ')} {r['connected_share']:.1%}"
        for (_kind, server), r in sorted(results.items())
        if "connected_share" in r
    ]
    write(
        f"faults: {len(kinds)} kinds x {repetitions} repetitions"
        f"{' (' + ', '.join(fewer) + ')' if fewer else ''}, "
        f"{len(failed)} failed{' (' + ', '.join(failed) + ')' if failed else ''}; "
        + "; ".join(parts)
        + f"; duplicates: {duplicates}; max concurrent connections: {streams}"
        + (f"; connected behind an idle cut: {', '.join(shares)}" if shares else "")
    )
