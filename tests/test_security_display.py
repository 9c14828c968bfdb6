"""What strangers put in shows as text, and a sender id never passes for a contact.

A caller or an SMS sender chooses its number, sender id and text; anyone with
the webhook URL the whole event. The dashboard shows it escaped, the
logbook and the blueprints show a phonebook name with its number, names lose
control and bidi characters, and payload fields cannot become attributes.
"""

from __future__ import annotations

from pathlib import Path
import re
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers.template import Template
from homeassistant.util import dt as dt_util, yaml as yaml_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
    mock_restore_cache_with_extra_data,
)

from custom_components.sprecord.const import CONF_NUMBERS, SUBENTRY_CONTACT
from custom_components.sprecord.event import MAX_EXTRA_FIELDS, extra_fields
from custom_components.sprecord.logbook import describe_entry, shown_party
from emulator import SpRecordEmulator

from .helpers import wait_until
from .test_blueprints import _set_up_automations, _use
from .test_logbook import describer, logged
from .test_states import call, end

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = (
    "![x](http://evil/p.png) <img src=x onerror=alert(1)> [link](http://evil) "
    "www.evil.com *bold* `code` # head\n> quote | a | b |"
)
HOSTILE_NAME = "**Bank** <b>x</b> [pay](http://evil)"
RLO = "\u202e"
CALL_EVENT = "event.sprecord_minipbx_call"
SMS_EVENT = "event.sprecord_minipbx_sms"
ICON = re.compile(r'<ha-icon icon="mdi:[a-z-]+"></ha-icon>')
INJECTED = {
    "entity_picture": "http://evil/p.png",
    "icon": "mdi:skull",
    "unit_of_measurement": "%",
    "assumed_state": True,
    "friendly_name": "Bank",
    "device_class": "doorbell",
}


def _markdown_cards() -> list[str]:
    """Return the templates of the demo dashboard's markdown cards."""
    dashboard = yaml_util.load_yaml_dict(ROOT / "demo" / "dashboard.yaml")
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "markdown":
                found.append(node["content"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)
    return found


def _readme_cards(name: str) -> list[str]:
    """Return the markdown cards' templates the README shows."""
    text = (ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(type: markdown\n.*?)```", text, re.DOTALL)
    assert blocks, name
    return [yaml_util.parse_yaml(block)["content"] for block in blocks]


def _assert_no_live_markup(rendered: str) -> None:
    """Check a rendered card: only its own icons are markup."""
    rest = ICON.sub("", rendered)
    assert "<" not in rest, rendered
    assert "](" not in rest, rendered
    assert "![" not in rest, rendered
    assert "http://" not in rest, rendered  # no autolink either
    assert "www.evil" not in rest, rendered
    assert RLO not in rest, rendered


def _set_hostile_states(hass: HomeAssistant) -> None:
    """Give every entity the cards read a stranger's names, numbers and text."""
    now = dt_util.utcnow().isoformat()
    party = {
        "caller": f"+7916{RLO}1234567",
        "caller_name": HOSTILE_NAME,
        "called": "<i>101</i>",
        "called_name": None,
        "line": "[GSM1](http://evil)",
    }
    hass.states.async_set(
        "sensor.sprecord_minipbx_call_state",
        "ringing",
        {"active_calls": [{"state": "ringing", **party}], **party},
    )
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_call_result",
        "success",
        {**party, "ended": now},
    )
    hass.states.async_set(
        "sensor.sprecord_minipbx_missed_calls",
        "1",
        {
            "last_caller": party["caller"],
            "last_caller_name": HOSTILE_NAME,
            "last_line": party["line"],
            "last_time": now,
        },
    )
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_sms",
        now,
        {
            "text": HOSTILE,
            "sender": "![s](http://evil/s.png)",
            "sender_name": None,
            "line": "GSM1",
            "received": now,
        },
    )
    entry = {
        "time": now,
        "direction": "incoming",
        "number": "<img src=x>",
        "name": HOSTILE_NAME,
        "line": "![l](http://evil/l.png)",
        "result": "success",
        "duration": 65,
        "answered_by": "[102](http://evil)",
        "answered_by_name": "<script>x</script>",
    }
    hass.states.async_set(
        "sensor.sprecord_minipbx_recent_calls",
        "1",
        {"calls": [entry], "friendly_name": "<img src=y> Recent calls"},
    )


async def test_dashboard_cards_show_a_hostile_sms_as_text(hass: HomeAssistant) -> None:
    _set_hostile_states(hass)
    cards = _markdown_cards()
    assert len(cards) == 3
    rendered = [Template(card, hass).async_render(parse_result=False) for card in cards]
    for text in rendered:
        _assert_no_live_markup(text)
    calls_now, sms, recent = rendered
    # Shown as written: escaped, not dropped.
    assert r"\!\[x\]\(http\://evil/p\.png\)" in sms
    assert r"&lt;img src\=x onerror\=alert\(1\)&gt;" in sms
    assert r"\[link\]\(http\://evil\)" in sms
    assert r"\*\*Bank\*\* &lt;b&gt;x&lt;/b&gt;" in calls_now
    # A contact with its number; the number lost its bidi override.
    shown = r"\*\*Bank\*\* &lt;b&gt;x&lt;/b&gt; \[pay\]\(http\://evil\)"
    assert f"{shown} (\\+79161234567)" in calls_now
    assert "&lt;script&gt;x&lt;/script&gt; (\\[102\\]\\(http\\://evil\\))" in recent
    assert r"&lt;img src\=y&gt; Recent calls" in recent


async def test_readme_card_shows_hostile_calls_as_text(hass: HomeAssistant) -> None:
    """The README's copy of the call list (the Russian one links to it)."""
    _set_hostile_states(hass)
    for card in _readme_cards("README.md"):
        rendered = Template(card, hass).async_render(parse_result=False)
        _assert_no_live_markup(rendered)
        assert r"&lt;img src\=x&gt;" in rendered


async def test_the_sms_card_names_a_contact_with_its_number(
    hass: HomeAssistant,
) -> None:
    now = dt_util.utcnow().isoformat()
    sms_card = _markdown_cards()[1]
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_sms",
        now,
        {"text": "Hi", "sender": "+79161234567", "sender_name": "Mum", "line": "GSM1"},
    )
    contact = Template(sms_card, hass).async_render(parse_result=False)
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_sms",
        now,
        {"text": "Hi", "sender": "Mum", "sender_name": None, "line": "GSM1"},
    )
    sender_id = Template(sms_card, hass).async_render(parse_result=False)
    assert "**Mum (\\+79161234567)**" in contact
    assert '**"Mum"**' in sender_id
    # A sender id made to look like a contact stays a quoted sender id.
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_sms",
        now,
        {"text": "Hi", "sender": "Mum (+79161234567)", "sender_name": None},
    )
    forged = Template(sms_card, hass).async_render(parse_result=False)
    assert '**"Mum \\(\\+79161234567\\)"**' in forged
    # After a restart the text is gone; who and when stay.
    hass.states.async_set(
        "sensor.sprecord_minipbx_last_sms",
        now,
        {"text": None, "sender": "Mum", "sender_name": None, "line": "GSM1"},
    )
    restarted = Template(sms_card, hass).async_render(parse_result=False)
    assert '**"Mum"**' in restarted
    assert "None" not in restarted


def test_a_party_is_shown_by_name_with_its_number() -> None:
    assert shown_party("Mum", "+79161234567") == "Mum (+79161234567)"
    assert shown_party(None, "Mum") == '"Mum"'
    assert shown_party(None, "Mum (+79161234567)") == '"Mum (+79161234567)"'
    assert shown_party(None, "+7 (916) 123-45-67") == "+7 (916) 123-45-67"
    assert shown_party(None, "900") == "900"
    assert shown_party(None, None) is None
    assert shown_party(f"Mu{RLO}m\n", f"+7916{RLO}1234567") == "Mum (+79161234567)"
    assert shown_party("x" * 500, "1" * 500) == f"{'x' * 99}… ({'1' * 63}…)"


async def test_logbook_tells_a_contact_from_a_sender_id(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    describe = describer(hass)
    sms = {"kind": "sms", "line": "GSM1"}
    contact = describe(logged(setup_entry.entry_id, **sms, number="+7916", name="Mum"))
    sender_id = describe(logged(setup_entry.entry_id, **sms, number="Mum", name=None))
    assert contact["message"] == "SMS from Mum (+7916) on GSM1"
    assert sender_id["message"] == 'SMS from "Mum" on GSM1'
    forged = describe(
        logged(setup_entry.entry_id, **sms, number="Mum (+7916)", name=None)
    )
    assert forged["message"] == 'SMS from "Mum (+7916)" on GSM1'

    # An entry written before names were cleaned is shown clean.
    forged = describe(
        logged(
            setup_entry.entry_id,
            kind="call",
            direction="incoming",
            result="success",
            duration=5,
            number=f"+7916{RLO}1234567\nFake line",
            name=None,
            line=f"GSM{RLO}1",
            answered_by="102",
            answered_by_name="Reception",
        )
    )
    assert forged["message"] == (
        'Incoming call from "+79161234567Fake line" on GSM1, '
        "answered by Reception (102), 5 s"
    )


def test_describe_entry_without_translations() -> None:
    english = {"sms": "SMS from {who} on {line}", "withheld": "a withheld number"}

    def text(key: str, **values: Any) -> str:
        return english[key].format(**values)

    data = {"kind": "sms", "number": None, "name": None, "line": "G"}
    assert describe_entry(data, text, {}) == "SMS from a withheld number on G"


async def test_phonebook_names_lose_bidi_and_control_characters(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: SpRecordEmulator
) -> None:
    """A contact saved with such characters (not through the form) is shown clean."""
    hass.config_entries.async_add_subentry(
        setup_entry,
        ConfigSubentry(
            data=MappingProxyType(
                {CONF_NAME: f"Mu{RLO}m\u200f\x07", CONF_NUMBERS: ["+79161234567"]}
            ),
            subentry_type=SUBENTRY_CONTACT,
            title="Mum",
            unique_id=None,
        ),
    )
    await hass.async_block_till_done()
    emulator.emit("incoming_sms", {"sms_src": "+79161234567", "text": "hi"})
    await wait_until(
        lambda: (
            (s := hass.states.get(SMS_EVENT)) is not None
            and s.attributes.get("sender_name") is not None
        )
    )
    await hass.async_block_till_done()
    assert hass.states.get(SMS_EVENT).attributes["sender_name"] == "Mum"
    sensor = hass.states.get("sensor.sprecord_minipbx_last_sms")
    assert sensor.attributes["sender_name"] == "Mum"


async def test_blueprints_tell_a_contact_from_a_sender_id(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    notify = async_mock_service(hass, "notify", "test")
    hass.states.async_set(CALL_EVENT, "unknown", {"event_types": ["incoming_call"]})
    hass.states.async_set(SMS_EVENT, "unknown", {"event_types": ["incoming_sms"]})
    await _set_up_automations(
        hass,
        tmp_path,
        [
            _use("incoming_call_notify.yaml"),
            _use("missed_call_notify.yaml"),
            _use("forward_sms.yaml"),
        ],
    )
    for when, sender, name in (
        ("2026-11-27T09:00:00.000+00:00", "+79161234567", "Mum"),
        ("2026-11-27T09:01:00.000+00:00", "Mum", None),
        ("2026-11-27T09:02:00.000+00:00", "Mum (+79161234567)", None),
    ):
        hass.states.async_set(
            SMS_EVENT,
            when,
            {
                "event_type": "incoming_sms",
                "sms_src": sender,
                "sender_name": name,
                "text": "Hi",
                "trunk": "GSM1",
            },
        )
        details = {"caller": sender, "caller_name": name, "line": "GSM1"}
        hass.states.async_set(
            CALL_EVENT, when, {"event_type": "incoming_call", **details}
        )
        hass.states.async_set(
            CALL_EVENT, when, {"event_type": "missed_call", **details}
        )
    await hass.async_block_till_done()
    titles = sorted(c.data["title"] for c in notify if "SMS" in c.data["title"])
    assert titles == [
        'SMS from "Mum (+79161234567)"',
        'SMS from "Mum"',
        "SMS from Mum (+79161234567)",
    ]
    messages = sorted(c.data["message"] for c in notify)
    assert "Call from Mum (+79161234567) on line GSM1" in messages
    assert 'Call from "Mum" on line GSM1' in messages
    assert 'Call from "Mum (+79161234567)" on line GSM1' in messages
    missed = [m for m in messages if m.startswith("Missed call from ")]
    assert [m.split(" on line")[0] for m in missed] == [
        'Missed call from "Mum (+79161234567)"',
        'Missed call from "Mum"',
        "Missed call from Mum (+79161234567)",
    ]


def test_extra_fields_are_bounded() -> None:
    many = {f"field{i}": i for i in range(40)}
    assert len(extra_fields(many)) == MAX_EXTRA_FIELDS
    kept = extra_fields({f"k{RLO}ey": 1, "big": "x" * 5000, "": 2, "key": 3})
    assert kept == {"key": 1}


async def test_payload_fields_cannot_become_attributes(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: SpRecordEmulator
) -> None:
    emulator.emit("incoming_call", {**call(1), **INJECTED})
    emulator.emit("call_end", {**end(1, status="no_answer"), **INJECTED})
    emulator.emit("incoming_sms", {"sms_src": "900", "text": "hi", **INJECTED})
    await wait_until(
        lambda: (
            (s := hass.states.get(SMS_EVENT)) is not None
            and s.attributes.get("sms_src") == "900"
        )
    )
    await wait_until(
        lambda: (
            hass.states.get(CALL_EVENT).attributes.get("event_type") == "missed_call"
        )
    )
    for entity_id, name in ((CALL_EVENT, "Call"), (SMS_EVENT, "SMS")):
        state = hass.states.get(entity_id)
        assert state.attributes["extra"] == INJECTED
        for key in INJECTED:
            if key == "friendly_name":
                assert state.attributes[key] == f"SpRecord MiniPBX {name}"
            else:
                assert key not in state.attributes, (entity_id, key)
    call_state = hass.states.get(CALL_EVENT)
    assert call_state.attributes["caller"] == "+79161234567"
    assert call_state.attributes["status"] == "no_answer"


async def test_restored_payload_fields_do_not_become_attributes(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: SpRecordEmulator,
    fast_link: None,
) -> None:
    """An event saved by an older version, its extra fields on top, is cleaned."""
    attributes = {"call_id": "8", "caller": "+79161234567", **INJECTED}
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(
                    CALL_EVENT,
                    "2026-11-27T09:00:00.000+00:00",
                    {"event_type": "incoming_call", **attributes},
                ),
                {
                    "last_event_type": "incoming_call",
                    "last_event_attributes": {
                        **attributes,
                        "extra": {"note": "kept", "big": "x" * 5000},
                    },
                },
            ),
            (
                State("event.sprecord_minipbx_pbx", "2026-11-27T09:00:00.000+00:00"),
                {"last_event_type": "startup", "last_event_attributes": INJECTED},
            ),
        ],
    )
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await wait_until(lambda: emulator.open_streams() == 1)
    await hass.async_block_till_done()
    state = hass.states.get(CALL_EVENT)
    assert state.state == "2026-11-27T09:00:00.000+00:00"
    assert state.attributes["call_id"] == "8"
    assert state.attributes["caller"] == "+79161234567"
    assert state.attributes["extra"] == {"note": "kept"}
    for key in set(INJECTED) - {"friendly_name"}:
        assert key not in state.attributes
    assert state.attributes["friendly_name"] == "SpRecord MiniPBX Call"
    pbx = hass.states.get("event.sprecord_minipbx_pbx")
    assert pbx.state == "2026-11-27T09:00:00.000+00:00"
    assert "icon" not in pbx.attributes
    assert "extra" not in pbx.attributes
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
