"""Actions of the SpRecord MiniPBX integration."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import voluptuous as vol

from .const import DOMAIN, SERVICE_RELOAD_PHONEBOOK
from .coordinator import SpRecordConfigEntry

ATTR_CONFIG_ENTRY_ID = "config_entry_id"

RELOAD_PHONEBOOK_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): str})


def _loaded_entries(
    hass: HomeAssistant, call: ServiceCall
) -> list[SpRecordConfigEntry]:
    """Return the entry the call names (or every entry), which must be loaded."""
    entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries: list[SpRecordConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    if entry_id is None:
        loaded = [e for e in entries if e.state is ConfigEntryState.LOADED]
        if not loaded:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="no_loaded_entries"
            )
        return loaded
    entry = next((e for e in entries if e.entry_id == entry_id), None)
    if entry is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_found",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return [entry]


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions."""

    async def reload_phonebook(call: ServiceCall) -> None:
        """Read the phonebook file again; a broken one keeps the old names."""
        failed: HomeAssistantError | None = None
        for entry in _loaded_entries(hass, call):
            # One broken file does not keep the other entries' from being read.
            try:
                await entry.runtime_data.coordinator.phonebook.async_load_file(
                    raise_errors=True
                )
            except HomeAssistantError as err:
                failed = failed or err
        if failed is not None:
            raise failed

    hass.services.async_register(
        DOMAIN,
        SERVICE_RELOAD_PHONEBOOK,
        reload_phonebook,
        schema=RELOAD_PHONEBOOK_SCHEMA,
    )
