"""Constants of the SpRecord MiniPBX integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "sprecord"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "SpRecord"
MODEL: Final = "MiniPBX"
DEFAULT_URL: Final = "https://api.sprecord.cloud"

CONF_CALL_TIMEOUT: Final = "call_timeout"
"""Option: minutes an unfinished call may last before it is taken as over."""
DEFAULT_CALL_TIMEOUT_MINUTES: Final = 180
CONF_TRANSPORT: Final = "transport"
"""Option: how events arrive (`TRANSPORTS`)."""
TRANSPORT_SSE: Final = "sse"
TRANSPORT_WEBHOOK: Final = "webhook"
TRANSPORT_BOTH: Final = "both"
TRANSPORTS: Final = [TRANSPORT_SSE, TRANSPORT_WEBHOOK, TRANSPORT_BOTH]
CONF_CLOUDHOOK_URL: Final = "cloudhook_url"
"""Entry data: the Home Assistant Cloud URL of the webhook, once created."""
CONF_AUTH_SCHEME: Final = "auth_scheme"
"""Entry data: how the server takes the key (`bearer`, `header:X`, `query:x`)."""
AUTH_AUTO: Final = "auto"
"""Reconfigure: find the scheme out (the default) instead of setting it."""
CONF_HOOK_URL: Final = "hook_url"
"""Entry data: the URL registered with the SpRecord cloud, while it holds one."""
CONF_DEVICE_ID: Final = "device_id"
"""Entry data: the PBX's own id, learned from its first event."""

EVENT_SPRECORD: Final = "sprecord_event"
"""Bus event fired for every event the PBX sends."""
EVENT_SPRECORD_LOG: Final = "sprecord_log"
"""Bus event fired once per finished call and per SMS (no text): the call
list's entries, which the logbook shows."""

ISSUE_TOO_MANY_CONNECTIONS: Final = "too_many_connections"
ISSUE_PHONEBOOK: Final = "phonebook_invalid"

CONF_PHONEBOOK_FILE: Final = "phonebook_file"
"""Option: a vCard or CSV file in the configuration folder with names."""
SUBENTRY_CONTACT: Final = "contact"
"""Subentry type: a contact managed in Home Assistant's UI."""
CONF_NUMBERS: Final = "numbers"
"""Contact subentry data: the contact's numbers, as the user wrote them."""
SERVICE_RELOAD_PHONEBOOK: Final = "reload_phonebook"

CONF_AUTODIAL: Final = "autodial"
"""Option: PBX `unique_prefix` -> the local address of its auto-dial API."""
SERVICE_START_AUTO_DIAL: Final = "start_auto_dial"
SERVICE_AUTO_DIAL_COMMAND: Final = "auto_dial_command"
SERVICE_GET_AUTO_DIAL_STATUS: Final = "get_auto_dial_status"
