"""Options of an entry: how calls are followed, and each PBX's auto-dial address.

The options open on a menu: the entry's settings (how events arrive, the
longest call, the phonebook file), or a PBX's local auto-dial address. A
PBX is picked by its device (the choice's value is the PBX's stable id, its
label the device's current name) and its address saved under that id
(`CONF_AUTODIAL`: `unique_prefix` -> `host[:port]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.const import CONF_ADDRESS
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
import voluptuous as vol

from .api.autodial import AutoDialClient
from .api.autodial_models import AutoDialError
from .autodial import parse_address
from .compat import OptionsFlowBase
from .const import (
    CONF_AUTODIAL,
    CONF_CALL_TIMEOUT,
    CONF_PHONEBOOK_FILE,
    CONF_TRANSPORT,
    DEFAULT_CALL_TIMEOUT_MINUTES,
    DOMAIN,
    TRANSPORT_SSE,
    TRANSPORTS,
)
from .contacts import async_describe_error
from .data import SpRecordConfigEntry
from .flow_credentials import VALIDATE_TIMEOUT
from .ids import LINE_MARK
from .phonebook import LoadedPhonebook, PhonebookError, read_phonebook_file
from .webhook import webhook_url_available

SETTINGS = "settings"
"""The menu's item (and step) for the entry's own settings."""
LOCAL_AUTODIAL = "local_autodial"
"""The menu's item (and step) that picks the PBX whose address to set."""
CONF_PBX = "pbx"

OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_TRANSPORT, default=TRANSPORT_SSE): SelectSelector(
            SelectSelectorConfig(
                options=TRANSPORTS,
                translation_key=CONF_TRANSPORT,
                mode=SelectSelectorMode.LIST,
            )
        ),
        vol.Required(
            CONF_CALL_TIMEOUT, default=DEFAULT_CALL_TIMEOUT_MINUTES
        ): NumberSelector(
            NumberSelectorConfig(
                min=5,
                max=1440,
                step=5,
                unit_of_measurement="min",
                mode=NumberSelectorMode.BOX,
            )
        ),
        vol.Optional(CONF_PHONEBOOK_FILE): TextSelector(),
    }
)
ADDRESS_SCHEMA = vol.Schema({vol.Optional(CONF_ADDRESS): TextSelector()})


def pbx_schema(pbxs: dict[str, str]) -> vol.Schema:
    """Return the form that picks one of `pbxs` (`unique_prefix` -> name)."""
    options = [SelectOptionDict(value=p, label=name) for p, name in pbxs.items()]
    return vol.Schema(
        {
            vol.Required(CONF_PBX): SelectSelector(
                SelectSelectorConfig(options=options, mode=SelectSelectorMode.LIST)
            )
        }
    )


@dataclass(frozen=True, slots=True)
class _Pending:
    """Settings checked and waiting for the user's word before they are saved."""

    options: dict[str, Any]
    file_name: str
    loaded: LoadedPhonebook | None
    user_input: dict[str, Any]


class SpRecordOptionsFlow(OptionsFlowBase):
    """Tune how calls are followed; saving changed options reloads the entry."""

    _pending: _Pending | None = None
    _pbx: str | None = None
    """The `unique_prefix` of the PBX whose address is being set."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the entry's settings or a PBX's local auto-dial address."""
        return self.async_show_menu(
            step_id="init", menu_options=[SETTINGS, LOCAL_AUTODIAL]
        )

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask how events arrive, how long a call may last, the phonebook file.

        Turning the webhook on asks first (`webhook_confirm`): it replaces
        the hook the account has on the SpRecord cloud.
        """
        errors: dict[str, str] = {}
        placeholders = {"phonebook_error": ""}
        if user_input is not None:
            transport = user_input[CONF_TRANSPORT]
            file_name = str(user_input.get(CONF_PHONEBOOK_FILE) or "").strip()
            loaded: LoadedPhonebook | None = None
            if transport != TRANSPORT_SSE and not webhook_url_available(self.hass):
                errors[CONF_TRANSPORT] = "no_webhook_url"
            elif file_name:
                try:
                    loaded = await self.hass.async_add_executor_job(
                        read_phonebook_file,
                        self.hass.config.config_dir,
                        file_name,
                        self.hass.config.country,
                    )
                except PhonebookError as err:
                    errors[CONF_PHONEBOOK_FILE] = "phonebook_invalid"
                    placeholders["phonebook_error"] = await async_describe_error(
                        self.hass, err
                    )
            if not errors:
                options: dict[str, Any] = {
                    CONF_TRANSPORT: transport,
                    CONF_CALL_TIMEOUT: int(user_input[CONF_CALL_TIMEOUT]),
                }
                if file_name:
                    options[CONF_PHONEBOOK_FILE] = file_name
                if addresses := self.config_entry.options.get(CONF_AUTODIAL):
                    options[CONF_AUTODIAL] = addresses
                self._pending = _Pending(options, file_name, loaded, user_input)
                saved = self.config_entry.options.get(CONF_TRANSPORT, TRANSPORT_SSE)
                if transport != TRANSPORT_SSE and saved == TRANSPORT_SSE:
                    return await self.async_step_webhook_confirm()
                return self._save(self._pending)
        suggested = user_input or dict(self.config_entry.options)
        return self._show_settings(suggested, errors, placeholders)

    async def async_step_webhook_confirm(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Say that the webhook replaces the account's hook; replace or go back.

        The SpRecord cloud keeps one hook per account and cannot tell which
        one it holds, so a CRM's hook, say, would stop getting events.
        """
        return self.async_show_menu(
            step_id="webhook_confirm",
            menu_options=["webhook_replace", "webhook_back"],
        )

    async def async_step_webhook_replace(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Save the options: the user accepts that the hook is replaced."""
        assert self._pending is not None  # noqa: S101 (reached from the menu only)
        return self._save(self._pending)

    async def async_step_webhook_back(
        self,
        user_input: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        """Show the settings again as the user filled them in; nothing is saved."""
        assert self._pending is not None  # noqa: S101 (reached from the menu only)
        pending, self._pending = self._pending, None
        return self._show_settings(pending.user_input, {}, {"phonebook_error": ""})

    def _save(self, pending: _Pending) -> ConfigFlowResult:
        """Hand the phonebook read to the entry and save the options."""
        self._apply_phonebook(pending.file_name, pending.loaded)
        return self.async_create_entry(data=pending.options)

    def _show_settings(
        self,
        suggested: dict[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """Show the settings form."""
        return self.async_show_form(
            step_id=SETTINGS,
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _apply_phonebook(self, file_name: str, loaded: LoadedPhonebook | None) -> None:
        """Hand the file just read to the running entry.

        Saving options that did not change reloads nothing, yet the user
        saved to have the file read again.
        """
        entry: SpRecordConfigEntry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return
        phonebook = entry.runtime_data.coordinator.phonebook
        if file_name == phonebook.file_name:
            phonebook.async_set_file(loaded)

    async def async_step_local_autodial(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the PBX whose local auto-dial address to set (one: no pick)."""
        pbxs = self._pbx_devices()
        if not pbxs:
            return self.async_abort(reason="no_pbxs")
        if user_input is not None:
            self._pbx = user_input[CONF_PBX]
            return await self.async_step_autodial_address()
        if len(pbxs) == 1:
            [self._pbx] = pbxs
            return await self.async_step_autodial_address()
        return self.async_show_form(
            step_id=LOCAL_AUTODIAL, data_schema=pbx_schema(pbxs)
        )

    async def async_step_autodial_address(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask the PBX's local auto-dial address; empty removes it.

        Only a new or changed address is checked: a PBX that is off now
        keeps its saved address.
        """
        assert self._pbx is not None  # noqa: S101 (reached after a pick only)
        prefix = self._pbx
        saved: dict[str, str] = dict(self.config_entry.options.get(CONF_AUTODIAL) or {})
        placeholders = {
            "pbx": self._pbx_devices().get(prefix, prefix),
            "address": "",
        }
        errors: dict[str, str] = {}
        if user_input is not None:
            address = str(user_input.get(CONF_ADDRESS) or "").strip()
            placeholders["address"] = address
            if address and address != saved.get(prefix):
                await self._check_address(address, errors)
            if not errors:
                if address:
                    saved[prefix] = address
                else:
                    saved.pop(prefix, None)
                options = {
                    key: value
                    for key, value in self.config_entry.options.items()
                    if key != CONF_AUTODIAL
                }
                if saved:
                    options[CONF_AUTODIAL] = saved
                return self.async_create_entry(data=options)
        suggested = user_input
        if suggested is None and prefix in saved:
            suggested = {CONF_ADDRESS: saved[prefix]}
        return self.async_show_form(
            step_id="autodial_address",
            data_schema=self.add_suggested_values_to_schema(ADDRESS_SCHEMA, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _check_address(self, address: str, errors: dict[str, str]) -> None:
        """Check that `address` answers as the auto-dial API; fill `errors`."""
        try:
            host, port = parse_address(address)
        except ValueError:
            errors[CONF_ADDRESS] = "autodial_invalid_address"
            return
        client = AutoDialClient(
            async_get_clientsession(self.hass), host, port, timeout=VALIDATE_TIMEOUT
        )
        try:
            await client.check()
        except AutoDialError:
            errors["base"] = "autodial_unreachable"

    def _pbx_devices(self) -> dict[str, str]:
        """Return the entry's PBXs: `unique_prefix` -> the name the user sees.

        A name given to two PBXs gets a number, so that the two can be told
        apart.
        """
        registry = dr.async_get(self.hass)
        pbxs: dict[str, str] = {}
        for device in dr.async_entries_for_config_entry(
            registry, self.config_entry.entry_id
        ):
            for domain, value in device.identifiers:
                if domain != DOMAIN or LINE_MARK in value:
                    continue
                label = device.name_by_user or device.name or value
                if label in pbxs.values():
                    label = f"{label} ({len(pbxs) + 1})"
                pbxs[value] = label
        return pbxs
