"""The contacts of an entry's phonebook, added and edited as its subentries."""

from __future__ import annotations

import re
from typing import Any

from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.const import CONF_NAME
from homeassistant.helpers.selector import TextSelector, TextSelectorConfig
import voluptuous as vol

from .const import CONF_NUMBERS
from .phonebook import NumberKeys, clean_name

CONTACT_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): TextSelector(),
        vol.Required(CONF_NUMBERS): TextSelector(TextSelectorConfig(multiline=True)),
    }
)
_NUMBER_SEPARATORS = re.compile(r"[,;\n]+")


class ContactSubentryFlow(ConfigSubentryFlow):
    """Add or edit a contact of the phonebook: a name and its numbers."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a contact."""
        return await self._async_contact_form("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a contact."""
        return await self._async_contact_form("reconfigure", user_input)

    async def _async_contact_form(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        """Ask for the name and the numbers; check every number."""
        errors: dict[str, str] = {}
        placeholders = {"number": ""}
        if user_input is not None:
            name = clean_name(str(user_input[CONF_NAME]))
            numbers = [
                number.strip()
                for number in _NUMBER_SEPARATORS.split(str(user_input[CONF_NUMBERS]))
                if number.strip()
            ]
            keys = NumberKeys(self.hass.config.country)
            bad = [number for number in numbers if not keys.is_valid(number)]
            if not name:
                errors[CONF_NAME] = "invalid_name"
            elif not numbers:
                errors[CONF_NUMBERS] = "no_numbers"
            elif bad:
                errors[CONF_NUMBERS] = "invalid_number"
                placeholders["number"] = bad[0]
            else:
                data = {CONF_NAME: name, CONF_NUMBERS: numbers}
                if step_id == "user":
                    return self.async_create_entry(title=name, data=data)
                return self.async_update_and_abort(
                    self._get_entry(),
                    self._get_reconfigure_subentry(),
                    title=name,
                    data=data,
                )
        suggested: dict[str, Any] = dict(user_input or {})
        if user_input is None and step_id == "reconfigure":
            subentry = self._get_reconfigure_subentry()
            suggested = {
                CONF_NAME: subentry.data[CONF_NAME],
                CONF_NUMBERS: "\n".join(subentry.data[CONF_NUMBERS]),
            }
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(CONTACT_SCHEMA, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )
