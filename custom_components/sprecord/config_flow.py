"""Config flow of the SpRecord MiniPBX: set up, reauthenticate, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import hashlib
import re
from typing import Any

from homeassistant.components.webhook import async_generate_id
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_NAME, CONF_URL, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import voluptuous as vol
from yarl import URL

from .api import (
    BEARER,
    AuthenticationError,
    AuthScheme,
    ProtocolError,
    SpRecordClient,
    SpRecordConnectionError,
    SpRecordError,
    TooManyConnectionsError,
    normalize_base_url,
)
from .api.autodial import AutoDialClient, AutoDialError
from .autodial import parse_address
from .compat import OptionsFlowBase
from .const import (
    AUTH_AUTO,
    CONF_AUTH_SCHEME,
    CONF_AUTODIAL,
    CONF_CALL_TIMEOUT,
    CONF_NUMBERS,
    CONF_PHONEBOOK_FILE,
    CONF_TRANSPORT,
    DEFAULT_CALL_TIMEOUT_MINUTES,
    DEFAULT_URL,
    DOMAIN,
    LOGGER,
    SUBENTRY_CONTACT,
    TRANSPORT_SSE,
    TRANSPORTS,
)
from .contacts import async_describe_error
from .coordinator import SpRecordConfigEntry
from .pbx import LINE_MARK
from .phonebook import (
    LoadedPhonebook,
    NumberKeys,
    PhonebookError,
    clean_name,
    read_phonebook_file,
)
from .webhook import webhook_url_available

TITLE = "SpRecord MiniPBX"
VALIDATE_TIMEOUT = 10.0
"""Seconds the flow waits for the server when it checks the credentials."""
REDACTED_URL = "**REDACTED**"
"""Shown instead of a URL that cannot be read (it may hold a password)."""

_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
_KEY = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL, default=DEFAULT_URL): _URL,
        vol.Required(CONF_API_KEY): _KEY,
    }
)
ADVANCED = "advanced"
AUTODIAL_SECTION = "local_autodial"
"""Options: a collapsed section, one local auto-dial address per PBX."""
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
CONTACT_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): TextSelector(),
        vol.Required(CONF_NUMBERS): TextSelector(TextSelectorConfig(multiline=True)),
    }
)
_NUMBER_SEPARATORS = re.compile(r"[,;\n]+")


def without_userinfo(url: str) -> str:
    """Return `url` without its `user:password@`, to show it to people.

    The flow refuses such a URL; an entry saved before may still hold one.
    """
    try:
        return str(URL(url).with_user(None))
    except ValueError:
        return REDACTED_URL


def url_errors(url: str) -> dict[str, str]:
    """Return the form errors of a server URL the user typed, before any request.

    A `user:password@` would be saved and shown in plain text, and the API
    takes only the key: it is refused, saying what to remove.
    """
    try:
        parsed = URL(url.strip())
    except ValueError:
        return {}  # `validate` says it is not an address
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return {CONF_URL: "url_has_credentials"}
    return {}


def account_id(api_key: str) -> str:
    """Return the entry's unique id: a digest of the key, never the key."""
    return hashlib.sha256(f"{DOMAIN}:{api_key}".encode()).hexdigest()[:16]


async def validate(
    hass: HomeAssistant, url: str, api_key: str, scheme: AuthScheme | None = None
) -> tuple[dict[str, str], AuthScheme]:
    """Open the event stream with these credentials; return form errors, scheme.

    Without `scheme`, how the server takes the key is found out (its
    `/openapi.json`, else the usual schemes one probe at a time).
    """
    try:
        base_url = normalize_base_url(url)
    except ValueError:
        return {CONF_URL: "invalid_url"}, BEARER
    client = SpRecordClient(
        async_get_clientsession(hass),
        base_url,
        api_key,
        request_timeout=VALIDATE_TIMEOUT,
        auth=scheme or BEARER,
    )
    return await _check(client, discover=scheme is None), client.auth


async def _check(  # noqa: PLR0911 (one return per outcome)
    client: SpRecordClient, *, discover: bool
) -> dict[str, str]:
    """Prove the client's credentials; return the form errors."""
    try:
        if discover:
            await client.discover_auth()
        else:
            await client.verify()
    except AuthenticationError:
        return {"base": "invalid_auth"}
    except TooManyConnectionsError:
        return {"base": "too_many_connections"}
    except SpRecordConnectionError:
        return {"base": "cannot_connect"}
    except ProtocolError:
        return {"base": "not_sprecord"}
    except SpRecordError as err:
        return {
            "base": "not_sprecord" if err.status in (404, 405) else "cannot_connect"
        }
    except Exception:  # noqa: BLE001 (the form must show something)
        LOGGER.exception("Unexpected error while checking the SpRecord credentials")
        return {"base": "unknown"}
    return {}


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


@dataclass(frozen=True, slots=True)
class _Pending:
    """Options checked and waiting for the user's word before they are saved."""

    options: dict[str, Any]
    file_name: str
    loaded: LoadedPhonebook | None
    user_input: dict[str, Any]


class SpRecordOptionsFlow(OptionsFlowBase):
    """Tune how calls are followed; saving changed options reloads the entry."""

    _pending: _Pending | None = None

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask how events arrive, how long a call may last, the phonebook file.

        A collapsed section holds each PBX's local auto-dial address. Turning
        the webhook on asks first (`webhook_confirm`): it replaces the hook
        the account has on the SpRecord cloud.
        """
        errors: dict[str, str] = {}
        placeholders = {"phonebook_error": "", "pbx": "", "address": ""}
        pbxs = self._pbx_devices()
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
            addresses: dict[str, str] = {}
            if not errors:
                addresses = await self._check_addresses(
                    pbxs, user_input.get(AUTODIAL_SECTION) or {}, errors, placeholders
                )
            if not errors:
                options: dict[str, Any] = {
                    CONF_TRANSPORT: transport,
                    CONF_CALL_TIMEOUT: int(user_input[CONF_CALL_TIMEOUT]),
                }
                if file_name:
                    options[CONF_PHONEBOOK_FILE] = file_name
                if addresses:
                    options[CONF_AUTODIAL] = addresses
                self._pending = _Pending(options, file_name, loaded, user_input)
                saved = self.config_entry.options.get(CONF_TRANSPORT, TRANSPORT_SSE)
                if transport != TRANSPORT_SSE and saved == TRANSPORT_SSE:
                    return await self.async_step_webhook_confirm()
                return self._save(self._pending)
        return self._show_form(
            pbxs, user_input or self._suggested(pbxs), errors, placeholders
        )

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
        """Show the form again as the user filled it in; nothing is saved."""
        assert self._pending is not None  # noqa: S101 (reached from the menu only)
        pending, self._pending = self._pending, None
        return self._show_form(
            self._pbx_devices(),
            pending.user_input,
            {},
            {"phonebook_error": "", "pbx": "", "address": ""},
        )

    def _save(self, pending: _Pending) -> ConfigFlowResult:
        """Hand the phonebook read to the entry and save the options."""
        self._apply_phonebook(pending.file_name, pending.loaded)
        return self.async_create_entry(data=pending.options)

    def _show_form(
        self,
        pbxs: dict[str, str],
        suggested: dict[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> ConfigFlowResult:
        """Show the options form (with a field per PBX for its auto-dial address)."""
        schema = OPTIONS_SCHEMA
        if pbxs:
            schema = schema.extend(
                {
                    vol.Optional(AUTODIAL_SECTION): section(
                        vol.Schema(
                            {vol.Optional(label): TextSelector() for label in pbxs}
                        ),
                        {"collapsed": True},
                    )
                }
            )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _pbx_devices(self) -> dict[str, str]:
        """Return the entry's PBXs: the name the user sees -> `unique_prefix`."""
        registry = dr.async_get(self.hass)
        pbxs: dict[str, str] = {}
        for device in dr.async_entries_for_config_entry(
            registry, self.config_entry.entry_id
        ):
            for domain, value in device.identifiers:
                if domain != DOMAIN or LINE_MARK in value:
                    continue
                label = device.name_by_user or device.name or value
                if label in pbxs:
                    label = f"{label} ({len(pbxs) + 1})"
                pbxs[label] = value
        return pbxs

    def _suggested(self, pbxs: dict[str, str]) -> dict[str, Any]:
        """Return the saved options as the form's suggested values."""
        options = dict(self.config_entry.options)
        saved: dict[str, str] = options.pop(CONF_AUTODIAL, None) or {}
        by_label = {label: saved[p] for label, p in pbxs.items() if p in saved}
        return {**options, AUTODIAL_SECTION: by_label}

    async def _check_addresses(
        self,
        pbxs: dict[str, str],
        given: dict[str, Any],
        errors: dict[str, str],
        placeholders: dict[str, str],
    ) -> dict[str, str]:
        """Check that each new or changed address answers as the auto-dial API.

        An address saved before and given again is kept unchecked: a PBX that
        is off now must not keep the user from changing other options.
        Return `unique_prefix` -> address; an error names the PBX at fault.
        """
        saved: dict[str, str] = self.config_entry.options.get(CONF_AUTODIAL) or {}
        addresses: dict[str, str] = {}
        session = async_get_clientsession(self.hass)
        for label, prefix in pbxs.items():
            address = str(given.get(label) or "").strip()
            if not address:
                continue
            if address == saved.get(prefix):
                addresses[prefix] = address
                continue
            placeholders.update(pbx=label, address=address)
            try:
                host, port = parse_address(address)
            except ValueError:
                errors["base"] = "autodial_invalid_address"
                return {}
            try:
                await AutoDialClient(
                    session, host, port, timeout=VALIDATE_TIMEOUT
                ).check()
            except AutoDialError:
                errors["base"] = "autodial_unreachable"
                return {}
            addresses[prefix] = address
        return addresses

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
