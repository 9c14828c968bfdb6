"""Config flow of the SpRecord MiniPBX: set up, reauthenticate, reconfigure.

The options (`flow_options`), the contacts (`flow_contact`) and the checks
of a URL and a key (`flow_credentials`) have modules of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.webhook import async_generate_id
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY, CONF_URL, CONF_WEBHOOK_ID
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol

from .api import AuthScheme, normalize_base_url
from .const import (
    AUTH_AUTO,
    CONF_AUTH_SCHEME,
    DEFAULT_URL,
    DOMAIN,
    SUBENTRY_CONTACT,
)
from .data import SpRecordConfigEntry
from .flow_contact import ContactSubentryFlow
from .flow_credentials import account_id, url_errors, validate, without_userinfo
from .flow_options import SpRecordOptionsFlow

__all__ = [
    "ADVANCED",
    "REAUTH_SCHEMA",
    "RECONFIGURE_SCHEMA",
    "TITLE",
    "USER_SCHEMA",
    "SpRecordConfigFlow",
    "account_id",
    "without_userinfo",
]
TITLE = "SpRecord MiniPBX"

_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_KEY = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL, default=DEFAULT_URL): _URL,
        vol.Required(CONF_API_KEY): _KEY,
    }
)
ADVANCED = "advanced"
RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL): _URL,
        vol.Required(CONF_API_KEY): _KEY,
        # Collapsed: how the key is sent, `auto` to find it out.
        vol.Optional(ADVANCED, default=dict): section(
            vol.Schema(
                {vol.Optional(CONF_AUTH_SCHEME, default=AUTH_AUTO): TextSelector()}
            ),
            {"collapsed": True},
        ),
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_API_KEY): _KEY})


class SpRecordConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up an SpRecord MiniPBX account."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SpRecordConfigEntry) -> OptionsFlow:
        """Return the options flow."""
        return SpRecordOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls,
        config_entry: ConfigEntry,  # noqa: ARG003 (every entry holds contacts)
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the kinds of items the entry holds: contacts of the phonebook."""
        return {SUBENTRY_CONTACT: ContactSubentryFlow}

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the server URL and the API key."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url, key = user_input[CONF_URL], user_input[CONF_API_KEY].strip()
            self._async_abort_entries_match({CONF_API_KEY: key})
            await self.async_set_unique_id(self._free_unique_id(key))
            errors = url_errors(url)
            if not errors:
                errors, scheme = await validate(self.hass, url, key)
            if not errors:
                return self.async_create_entry(
                    title=TITLE,
                    data={
                        CONF_URL: normalize_base_url(url),
                        CONF_API_KEY: key,
                        CONF_AUTH_SCHEME: str(scheme),
                        CONF_WEBHOOK_ID: async_generate_id(),
                    },
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
        )

    def _free_unique_id(self, key: str) -> str:
        """Return the unique id of a new entry for `key`.

        An entry keeps the unique id it was created with when a later reauth
        or reconfigure changes its key (its entities keep theirs), so the
        digest of a key may be taken by an entry that now uses another key.
        """
        taken = {entry.unique_id for entry in self._async_current_entries()}
        unique_id, number = account_id(key), 1
        while unique_id in taken:
            unique_id, number = account_id(f"{key}#{number}"), number + 1
        return unique_id

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start over with a new key when the server refused the old one."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new API key."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            key = user_input[CONF_API_KEY].strip()
            errors, scheme = await validate(self.hass, entry.data[CONF_URL], key)
            if not errors:
                return self._update(
                    entry, {CONF_API_KEY: key, CONF_AUTH_SCHEME: str(scheme)}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            description_placeholders={"url": without_userinfo(entry.data[CONF_URL])},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server URL or the API key (advanced: how it is sent)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            url, key = user_input[CONF_URL], user_input[CONF_API_KEY].strip()
            advanced = user_input.get(ADVANCED) or {}
            chosen = str(advanced.get(CONF_AUTH_SCHEME, AUTH_AUTO)).strip()
            errors = url_errors(url)
            given: AuthScheme | None = None
            if chosen != AUTH_AUTO:
                try:
                    given = AuthScheme.parse(chosen)
                except ValueError:
                    errors[CONF_AUTH_SCHEME] = "invalid_auth_scheme"
            if not errors:
                errors, scheme = await validate(self.hass, url, key, given)
                if not errors:
                    return self._update(
                        entry,
                        {
                            CONF_URL: normalize_base_url(url),
                            CONF_API_KEY: key,
                            CONF_AUTH_SCHEME: str(scheme),
                        },
                    )
        suggested = user_input or {
            **entry.data,
            CONF_URL: without_userinfo(entry.data[CONF_URL]),
            ADVANCED: {CONF_AUTH_SCHEME: AUTH_AUTO},
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA, suggested
            ),
            errors=errors,
        )

    def _update(
        self, entry: SpRecordConfigEntry, changes: dict[str, Any]
    ) -> ConfigFlowResult:
        """Save new credentials unless another entry already uses the key."""
        key = changes[CONF_API_KEY]
        for other in self._async_current_entries(include_ignore=False):
            if other.entry_id != entry.entry_id and other.data.get(CONF_API_KEY) == key:
                return self.async_abort(reason="already_configured")
        return self.async_update_reload_and_abort(entry, data_updates=changes)
