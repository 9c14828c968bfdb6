"""Diagnostics of the SpRecord MiniPBX: the link and the calls, redacted."""

from __future__ import annotations

from collections import Counter
import time
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY, CONF_URL, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from .const import (
    CONF_AUTODIAL,
    CONF_CLOUDHOOK_URL,
    CONF_DEVICE_ID,
    CONF_HOOK_URL,
    CONF_NUMBERS,
)
from .data import SpRecordConfigEntry
from .flow_credentials import without_userinfo
from .pbx import Pbx

TO_REDACT = {
    CONF_API_KEY,
    CONF_DEVICE_ID,
    "pbx_id",
    CONF_WEBHOOK_ID,
    CONF_CLOUDHOOK_URL,
    CONF_HOOK_URL,
    "webhook_url",
    "unique_id",
    # phone numbers
    "caller",
    "called",
    "answered_by",
    "sender",
    "call_src",
    "call_dst",
    "sms_src",
    "number",
    CONF_NUMBERS,
    # local addresses of the auto-dial API (no password protects it)
    CONF_AUTODIAL,
    # names from the phonebook
    "caller_name",
    "called_name",
    "sender_name",
    "last_caller_name",
    # SMS text
    "text",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SpRecordConfigEntry
) -> dict[str, Any]:
    """Return what helps to understand a problem, without secrets or numbers."""
    coordinator = entry.runtime_data.coordinator
    link = entry.runtime_data.link
    hook, subscription = link.webhook, link.subscription
    return async_redact_data(
        {
            "entry": {
                **entry.as_dict(),
                # An entry saved before the flow refused `user:password@`.
                "data": {
                    **entry.data,
                    CONF_URL: without_userinfo(entry.data[CONF_URL]),
                },
                # Contacts: how many, never who.
                "subentries": dict(
                    Counter(sub.subentry_type for sub in entry.subentries.values())
                ),
            },
            "phonebook": coordinator.phonebook.as_dict(),
            "autodial_pbxs": len(coordinator.autodial),
            "transport": link.transport,
            "webhook": None
            if hook is None or subscription is None
            else {
                "registered": subscription.registered,
                "webhook_url": subscription.url,
                "last_error": subscription.last_error,
                "bad_requests": hook.bad_requests,
                "unknown_pbx_requests": hook.unknown_pbx_requests,
            },
            "link": {
                "connected": link.connected,
                "available": link.available,
                "server": without_userinfo(link.client.base_url),
                "auth_scheme": str(link.client.auth),
                "watchdog": link.client.watch.as_dict(),
                **link.stats.as_dict(),
                "streams": link.stream.history.as_dict(time.monotonic()),
            },
            "pbxs": [_pbx(pbx) for pbx in coordinator.all_pbxs],
        },
        TO_REDACT,
    )


def _pbx(pbx: Pbx) -> dict[str, Any]:
    """Return one PBX's figures (its id, numbers and texts are redacted)."""
    tracker = pbx.tracker
    sms = pbx.last_sms
    return {
        "pbx_id": pbx.pbx_id,
        "position": pbx.number,
        "name": pbx.name,
        "calls": {
            "state": tracker.state.value,
            "active": [call.as_dict() for call in tracker.active.values()],
            "last_call": tracker.last_call.as_dict() if tracker.last_call else None,
            "missed_count": tracker.missed_count,
            "lines": list(tracker.lines),
        },
        "last_sms": None
        if sms is None
        else {"sender": sms.sender, "text": sms.text, "line": sms.line},
    }
