"""Caller names in Home Assistant: contacts from the UI and from a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
import shutil
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_NAME
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sprecord.const import (
    CONF_CALL_TIMEOUT,
    CONF_NUMBERS,
    CONF_PHONEBOOK_FILE,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_SPRECORD,
    EVENT_SPRECORD_LOG,
    SERVICE_RELOAD_PHONEBOOK,
    SUBENTRY_CONTACT,
    TRANSPORT_SSE,
)
from custom_components.sprecord.diagnostics import async_get_config_entry_diagnostics
from emulator import SpRecordEmulator

from .helpers import open_settings, wait_for_sms, wait_for_state, wait_until
from .test_logbook import describer
from .test_states import CALL_STATE, call, end

FILES = Path(__file__).parent / "phonebooks"
CALL_EVENT = "event.sprecord_minipbx_call"
SMS_EVENT = "event.sprecord_minipbx_sms"
MISSED = "sensor.sprecord_minipbx_missed_calls"
LAST_SMS = "sensor.sprecord_minipbx_last_sms"
LINE = "sensor.line_gsm1_state"
RECENT = "sensor.sprecord_minipbx_recent_calls"
ISSUE = "phonebook_invalid_{}"


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> AsyncIterator[MockConfigEntry]:
    """Set an entry up in a Home Assistant whose country is Russia."""
    hass.config.country = "RU"
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    yield config_entry
    await hass.config_entries.async_unload(config_entry.entry_id)


def collected(hass: HomeAssistant, event_type: str) -> list[Event]:
    """Return a list that collects the bus events of `event_type`.

    A callback: it runs in the loop, in order, never in a worker thread.
    """
    events: list[Event] = []

    @callback
    def collect(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(event_type, collect)
    return events


@pytest.fixture
def log(hass: HomeAssistant) -> list[Event]:
    """Collect `sprecord_log`s (the call list's entries)."""
    return collected(hass, EVENT_SPRECORD_LOG)


@pytest.fixture
def bus(hass: HomeAssistant) -> list[Event]:
    """Collect `sprecord_event`s."""
    return collected(hass, EVENT_SPRECORD)


async def add_contact(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, numbers: str
) -> dict[str, Any]:
    """Add a contact through the UI flow; return the flow's last result."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CONTACT), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: name, CONF_NUMBERS: numbers}
    )


async def use_file(
    hass: HomeAssistant, entry: MockConfigEntry, name: str
) -> dict[str, Any]:
    """Name a phonebook file in the options; return the flow's last result."""
    result = await open_settings(hass, entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_TRANSPORT: TRANSPORT_SSE,
            CONF_CALL_TIMEOUT: 180,
            CONF_PHONEBOOK_FILE: name,
        },
    )
    await hass.async_block_till_done()
    return result


def copy_to_config(hass: HomeAssistant, source: Path, name: str) -> Path:
    """Put a phonebook file in Home Assistant's configuration folder."""
    target = Path(hass.config.path(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


async def ring(
    hass: HomeAssistant, emulator: SpRecordEmulator, call_id: int, src: str
) -> None:
    """Let a call ring from `src` on GSM1."""
    emulator.emit("incoming_call", call(call_id, src=src))
    await wait_for_state(hass, CALL_STATE, "ringing")


async def hang_up(
    hass: HomeAssistant, emulator: SpRecordEmulator, call_id: int, status: str
) -> None:
    """End the call."""
    emulator.emit("call_end", end(call_id, status=status))
    await wait_for_state(hass, CALL_STATE, "idle")


# --- the UI -------------------------------------------------------------------


async def test_a_contact_added_in_the_ui_names_its_calls_everywhere(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
    bus: list[Event],
    log: list[Event],
) -> None:
    result = await add_contact(hass, entry, " Mum ", "8 (916) 123-45-67")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Mum"
    [contact] = entry.subentries.values()
    assert contact.subentry_type == SUBENTRY_CONTACT
    assert dict(contact.data) == {CONF_NAME: "Mum", CONF_NUMBERS: ["8 (916) 123-45-67"]}

    # The PBX writes the number its own way.
    await ring(hass, emulator, 1, "+79161234567")
    state = hass.states.get(CALL_STATE)
    assert state.attributes["caller"] == "+79161234567"  # the raw number stays
    assert state.attributes["caller_name"] == "Mum"
    assert state.attributes["active_calls"][0]["caller_name"] == "Mum"
    assert hass.states.get(LINE).attributes["caller_name"] == "Mum"
    event_state = hass.states.get(CALL_EVENT)
    assert event_state.attributes["event_type"] == "incoming_call"
    assert event_state.attributes["caller_name"] == "Mum"
    assert event_state.attributes["called_name"] is None
    [incoming] = [e for e in bus if e.data["event_type"] == "incoming_call"]
    assert incoming.data["caller_name"] == "Mum"
    assert incoming.data["called_name"] is None
    assert incoming.data["payload"]["call_src"] == "+79161234567"

    await hang_up(hass, emulator, 1, "no_answer")
    assert hass.states.get(MISSED).attributes["last_caller_name"] == "Mum"
    [ended] = [e for e in bus if e.data["event_type"] == "call_end"]
    assert ended.data["caller_name"] == "Mum"
    [logged] = log
    assert describer(hass)(logged)["message"] == (
        "Missed call from Mum (+79161234567) on GSM1"
    )
    calls = hass.states.get(RECENT).attributes["calls"]
    assert [(c["number"], c["name"], c["result"]) for c in calls] == [
        ("+79161234567", "Mum", "missed")
    ]


async def test_an_extension_and_an_outgoing_call_are_named(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
    log: list[Event],
) -> None:
    await add_contact(hass, entry, "Reception", "101")
    await add_contact(hass, entry, "Shop", "+7 495 111-22-33, 8 800 555 35 35")
    emulator.emit(
        "outgoing_call",
        {"call_id": 7, "call_src": "101", "call_dst": "84951112233", "trunk": "GSM1"},
    )
    await wait_for_state(hass, CALL_STATE, "dialing")
    state = hass.states.get(CALL_STATE)
    assert (state.attributes["caller_name"], state.attributes["called_name"]) == (
        "Reception",
        "Shop",
    )
    emulator.emit("call_end", end(7, status="busy"))
    await wait_for_state(hass, CALL_STATE, "idle")
    [logged] = log
    assert describer(hass)(logged)["message"] == (
        "Outgoing call to Shop (84951112233) on GSM1, Busy"
    )


async def test_contacts_are_edited_and_removed_without_a_reload(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
) -> None:
    await add_contact(hass, entry, "Mum", "+79161234567")
    coordinator = entry.runtime_data.coordinator
    [contact] = entry.subentries.values()
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CONTACT),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": contact.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    schema = result["data_schema"].schema
    suggested = {str(k): k.description["suggested_value"] for k in schema}
    assert suggested == {CONF_NAME: "Mum", CONF_NUMBERS: "+79161234567"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_NAME: "Мама", CONF_NUMBERS: "+79161234567\n8 903 123 45 67"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[contact.subentry_id].title == "Мама"
    assert entry.runtime_data.coordinator is coordinator  # no reload
    await ring(hass, emulator, 1, "+79031234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Мама"
    await hang_up(hass, emulator, 1, "success")

    assert hass.config_entries.async_remove_subentry(entry, contact.subentry_id)
    await ring(hass, emulator, 2, "+79031234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] is None
    assert entry.runtime_data.coordinator is coordinator


@pytest.mark.parametrize(
    ("name", "numbers", "field", "error", "placeholder"),
    [
        ("  ", "+79161234567", CONF_NAME, "invalid_name", ""),
        ("Mum", " , \n ;", CONF_NUMBERS, "no_numbers", ""),
        ("Mum", "+79161234567, +7 916 12", CONF_NUMBERS, "invalid_number", "+7 916 12"),
        ("Mum", "mum's mobile", CONF_NUMBERS, "invalid_number", "mum's mobile"),
    ],
)
async def test_the_contact_form_says_what_to_fix(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    name: str,
    numbers: str,
    field: str,
    error: str,
    placeholder: str,
) -> None:
    result = await add_contact(hass, entry, name, numbers)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    assert result["description_placeholders"] == {"number": placeholder}
    assert not entry.subentries
    # The user fixes it in the same form.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Mum", CONF_NUMBERS: "+79161234567"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


# --- the file -----------------------------------------------------------------


async def test_a_vcard_names_calls_and_sms(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
) -> None:
    copy_to_config(hass, FILES / "three.vcf", "phonebook/contacts.vcf")
    result = await use_file(hass, entry, " phonebook/contacts.vcf ")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_PHONEBOOK_FILE] == "phonebook/contacts.vcf"
    await ring(hass, emulator, 1, "+74951112233")  # Mum's second number
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Mum"
    assert hass.states.get(CALL_STATE).attributes["called_name"] == "Reception"
    await hang_up(hass, emulator, 1, "success")
    await ring(hass, emulator, 2, "+79031234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Пётр Иванов"
    emulator.emit(
        "incoming_sms", {"sms_src": "89031234567", "text": "Привет", "trunk": "GSM1"}
    )
    await wait_for_sms(hass, LAST_SMS, "Привет")
    assert hass.states.get(LAST_SMS).attributes["sender_name"] == "Пётр Иванов"
    assert hass.states.get(SMS_EVENT).attributes["sender_name"] == "Пётр Иванов"

    # A contact from the UI wins over the file's.
    await add_contact(hass, entry, "Petya", "+7 903 123-45-67")
    await hang_up(hass, emulator, 2, "success")
    await ring(hass, emulator, 3, "+79031234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Petya"


async def test_a_broken_file_raises_an_issue_and_keeps_the_names(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
) -> None:
    path = copy_to_config(hass, FILES / "three.vcf", "contacts.vcf")
    await use_file(hass, entry, "contacts.vcf")
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, ISSUE.format(entry.entry_id)) is None

    path.write_text(path.read_text() + "BEGIN:VCARD\nFN:Half a card\n")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, SERVICE_RELOAD_PHONEBOOK, {}, blocking=True
        )
    assert caught.value.translation_key == "phonebook_invalid"
    issue = issues.async_get_issue(DOMAIN, ISSUE.format(entry.entry_id))
    assert issue is not None
    assert issue.translation_placeholders == {
        "file": "contacts.vcf",
        "error": "line 20: a card that begins here does not end",
    }
    await ring(hass, emulator, 1, "+79161234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Mum"  # kept
    await hang_up(hass, emulator, 1, "success")

    # Fixed: the action reads it, the issue goes.
    path.write_text("BEGIN:VCARD\nFN:Mother\nTEL:+79161234567\nEND:VCARD\n")
    await hass.services.async_call(
        DOMAIN,
        SERVICE_RELOAD_PHONEBOOK,
        {"config_entry_id": entry.entry_id},
        blocking=True,
    )
    assert issues.async_get_issue(DOMAIN, ISSUE.format(entry.entry_id)) is None
    await ring(hass, emulator, 2, "+79161234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Mother"


async def test_the_issue_is_in_the_users_language(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    hass.config.language = "ru"
    path = copy_to_config(hass, FILES / "three.vcf", "contacts.csv")
    path.write_text("Телефон\n+79161234567\n")
    await use_file(hass, entry, "contacts.csv")
    result = await open_settings(hass, entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_TRANSPORT: TRANSPORT_SSE,
            CONF_CALL_TIMEOUT: 180,
            CONF_PHONEBOOK_FILE: "contacts.csv",
        },
    )
    assert result["errors"] == {CONF_PHONEBOOK_FILE: "phonebook_invalid"}
    assert result["description_placeholders"]["phonebook_error"] == (
        "строка 1: в заголовке нет столбца с именем (например, Name или Имя)"
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("missing.vcf", "file not found"),
        ("../secrets.yaml", "the file must be in the configuration folder"),
        ("/etc/passwd", "the file must be in the configuration folder"),
        ("configuration.yaml", "not a .vcf or .csv file"),
    ],
)
async def test_the_options_check_the_file(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, error: str
) -> None:
    result = await use_file(hass, entry, name)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PHONEBOOK_FILE: "phonebook_invalid"}
    assert result["description_placeholders"]["phonebook_error"] == error
    assert CONF_PHONEBOOK_FILE not in entry.options


async def test_saving_the_same_options_reads_the_file_again(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
) -> None:
    path = copy_to_config(hass, FILES / "three.vcf", "contacts.vcf")
    await use_file(hass, entry, "contacts.vcf")
    coordinator = entry.runtime_data.coordinator
    path.write_text("BEGIN:VCARD\nFN:Mother\nTEL:+79161234567\nEND:VCARD\n")
    result = await use_file(hass, entry, "contacts.vcf")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.runtime_data.coordinator is coordinator  # nothing changed...
    await ring(hass, emulator, 1, "+79161234567")
    assert hass.states.get(CALL_STATE).attributes["caller_name"] == "Mother"  # ...yet


async def test_a_file_broken_while_home_assistant_was_off(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    config_entry: MockConfigEntry,
    fast_link: None,
) -> None:
    """Setup goes on without the file's names; the issue says why."""
    hass.config.country = "RU"
    path = copy_to_config(hass, FILES / "three.vcf", "contacts.vcf")
    path.write_bytes(b"BEGIN:VCARD\nFN:Broken\nTEL:1\nBEGIN:VCARD\n")
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_PHONEBOOK_FILE: "contacts.vcf"}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, ISSUE.format(config_entry.entry_id)
    )
    assert issue is not None
    assert issue.translation_placeholders["error"] == (
        "line 4: a card begins before the previous one ended"
    )
    # Removing the file from the options clears it.
    result = await use_file(hass, config_entry, "")
    assert result["data"] == {CONF_TRANSPORT: TRANSPORT_SSE, CONF_CALL_TIMEOUT: 180}
    await hass.async_block_till_done()
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, ISSUE.format(config_entry.entry_id))
        is None
    )
    # Removing the entry removes an issue left.
    path.write_bytes(b"")
    await use_file(hass, config_entry, "contacts.vcf")  # an empty .vcf is valid
    await hass.config_entries.async_remove(config_entry.entry_id)


async def test_the_action_names_the_entry_it_cannot_use(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, SERVICE_RELOAD_PHONEBOOK, {"config_entry_id": "nope"}, blocking=True
        )
    assert caught.value.translation_key == "entry_not_found"
    await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_RELOAD_PHONEBOOK,
            {"config_entry_id": entry.entry_id},
            blocking=True,
        )
    assert caught.value.translation_key == "entry_not_loaded"
    # Without an entry: every loaded one; there is none.
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, SERVICE_RELOAD_PHONEBOOK, {}, blocking=True
        )
    assert caught.value.translation_key == "no_loaded_entries"


async def test_one_broken_file_does_not_stop_the_others(
    hass: HomeAssistant, emulator: SpRecordEmulator, entry: MockConfigEntry
) -> None:
    """Two accounts, one file each; the first file is broken."""
    emulator.accounts["second"] = "second-pbx"
    other = MockConfigEntry(
        domain=DOMAIN,
        title="Second office",
        data={"url": emulator.url, "api_key": "second"},
        unique_id="second",
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    broken = copy_to_config(hass, FILES / "three.vcf", "first.vcf")
    good = copy_to_config(hass, FILES / "three.vcf", "second.vcf")
    await use_file(hass, entry, "first.vcf")
    await use_file(hass, other, "second.vcf")
    broken.write_text("BEGIN:VCARD\n")
    good.write_text("BEGIN:VCARD\nFN:Changed\nTEL:+79161234567\nEND:VCARD\n")
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN, SERVICE_RELOAD_PHONEBOOK, {}, blocking=True
        )
    phonebook = other.runtime_data.coordinator.phonebook
    assert phonebook.name_for("+79161234567") == "Changed"
    assert entry.runtime_data.coordinator.phonebook.name_for("+79161234567") == "Mum"
    await hass.config_entries.async_unload(other.entry_id)


async def test_names_and_contacts_are_redacted_in_diagnostics(
    hass: HomeAssistant,
    emulator: SpRecordEmulator,
    entry: MockConfigEntry,
) -> None:
    await add_contact(hass, entry, "Mum", "+79161234567")
    copy_to_config(hass, FILES / "three.vcf", "contacts.vcf")
    await use_file(hass, entry, "contacts.vcf")
    await ring(hass, emulator, 1, "+79031234567")
    await hang_up(hass, emulator, 1, "no_answer")
    emulator.emit(
        "incoming_sms", {"sms_src": "+79161234567", "text": "hi", "trunk": "GSM1"}
    )
    await wait_for_sms(hass, LAST_SMS, "hi")
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    text = repr(diagnostics)
    for secret in ("Mum", "Пётр", "Иванов", "9161234567", "9031234567"):
        assert secret not in text
    assert diagnostics["entry"]["subentries"] == {SUBENTRY_CONTACT: 1}
    assert diagnostics["phonebook"] == {
        "region": "RU",
        "ui_contacts": 1,
        "file_contacts": 3,
        "file_numbers_skipped": 0,
        "numbers_named": 4,
        "file": "contacts.vcf",
        "file_error": None,
    }


async def test_options_of_an_entry_that_is_not_loaded(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """The file is checked; the entry reads it when it sets up."""
    config_entry.add_to_hass(hass)  # not set up: e.g. the cloud unreachable
    copy_to_config(hass, FILES / "three.vcf", "contacts.vcf")
    result = await use_file(hass, config_entry, "contacts.vcf")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options[CONF_PHONEBOOK_FILE] == "contacts.vcf"
