"""The entry's phonebook: contacts from the UI and a file, kept current.

Contacts managed in the UI are config subentries of the entry: each shows on
the integration's page, where it is added, edited and deleted like any
other Home Assistant item. The phonebook follows their changes at once
(Home Assistant announces every change of the entry), without a reload. The
file named in the options is read in the executor at setup (and on options
save, which reloads the entry) and by the `reload_phonebook` action; a file
that cannot be read raises a repair issue naming the line, and the names
already loaded stay.
"""

from __future__ import annotations

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.translation import async_get_translations

from .api.clean import clean_field, for_log
from .const import (
    CONF_NUMBERS,
    CONF_PHONEBOOK_FILE,
    DOMAIN,
    ISSUE_PHONEBOOK,
    LOGGER,
    SUBENTRY_CONTACT,
)
from .phonebook import (
    MAX_NAME_LENGTH,
    Contact,
    LoadedPhonebook,
    Phonebook,
    PhonebookError,
    read_phonebook_file,
)


async def async_describe_error(hass: HomeAssistant, err: PhonebookError) -> str:
    """Return what is wrong with a file, in the user's language, with its line."""
    translations = await async_get_translations(
        hass, hass.config.language, "exceptions", [DOMAIN]
    )
    reason = translations.get(
        f"component.{DOMAIN}.exceptions.phonebook_{err.code}.message", str(err)
    )
    if not err.line:
        return reason
    line = translations.get(
        f"component.{DOMAIN}.exceptions.phonebook_line.message", "line {line}"
    ).replace("{line}", str(err.line))
    return f"{line}: {reason}"


def ui_contacts(entry: ConfigEntry) -> list[Contact]:
    """Return the contacts managed in the UI (the entry's contact subentries)."""
    return [
        Contact(str(sub.data[CONF_NAME]), tuple(sub.data[CONF_NUMBERS]))
        for sub in entry.subentries.values()
        if sub.subentry_type == SUBENTRY_CONTACT
    ]


class EntryPhonebook:
    """Names for the entry's numbers; UI contacts win over the file's."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Start with the UI contacts; `async_load_file()` adds the file's.

        The UI contacts are read here, at setup, so that an event handled
        before the entry is loaded gets their names too.
        """
        self.hass = hass
        self.entry = entry
        self.phonebook = Phonebook(hass.config.country)
        self.file_name: str | None = entry.options.get(CONF_PHONEBOOK_FILE) or None
        self.file_error: str | None = None
        """What is wrong with the file, when its last reading failed."""
        self._ui: list[Contact] = []
        self._update_ui()

    @property
    def issue_id(self) -> str:
        """Return the id of the entry's broken-phonebook repair issue."""
        return f"{ISSUE_PHONEBOOK}_{self.entry.entry_id}"

    def name_for(self, number: str | None) -> str | None:
        """Return the name of `number`, None when the phonebook has none.

        Names come from files and forms: one is shown on a single line,
        without control or bidi characters, at most `MAX_NAME_LENGTH`
        characters.
        """
        name = self.phonebook.name_for(number)
        return (clean_field(name, MAX_NAME_LENGTH) or None) if name else None

    @callback
    def async_follow_ui(self) -> CALLBACK_TYPE:
        """Follow contacts added, edited and removed in the UI; return the stop."""

        @callback
        def changed(change: ConfigEntryChange, entry: ConfigEntry) -> None:
            if change is ConfigEntryChange.UPDATED and entry is self.entry:
                self._update_ui()

        return async_dispatcher_connect(self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, changed)

    def _update_ui(self) -> None:
        contacts = ui_contacts(self.entry)
        if contacts != self._ui:
            self._ui = contacts
            self.phonebook.set_ui(contacts)

    async def async_load_file(self, *, raise_errors: bool = False) -> None:
        """Read the file named in the options (without one: no file names).

        A file that cannot be read keeps the names loaded before and raises
        a repair issue; with `raise_errors` (the action) also a translated
        `HomeAssistantError`.
        """
        if self.file_name is None:
            self.phonebook.set_file(None)
            self._clear_issue()
            return
        try:
            loaded = await self.hass.async_add_executor_job(
                read_phonebook_file,
                self.hass.config.config_dir,
                self.file_name,
                self.phonebook.keys.region,
            )
        except PhonebookError as err:
            if not self._current():
                return
            self.file_error = await async_describe_error(self.hass, err)
            LOGGER.warning(
                "The phonebook %s cannot be read: %s",
                for_log(self.file_name),
                for_log(err),
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self.issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_PHONEBOOK,
                translation_placeholders={
                    "file": self.file_name,
                    "error": self.file_error,
                },
            )
            if raise_errors:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key=ISSUE_PHONEBOOK,
                    translation_placeholders={
                        "file": self.file_name,
                        "error": self.file_error,
                    },
                ) from err
            return
        if self._current():
            self.async_set_file(loaded)

    def _current(self) -> bool:
        """Tell whether the entry still runs (a read may outlast it)."""
        return self.entry.state in (
            ConfigEntryState.LOADED,
            ConfigEntryState.SETUP_IN_PROGRESS,
        )

    @callback
    def async_set_file(self, loaded: LoadedPhonebook | None) -> None:
        """Take the file's contacts, read without error."""
        self.phonebook.set_file(loaded)
        self._clear_issue()

    def _clear_issue(self) -> None:
        self.file_error = None
        ir.async_delete_issue(self.hass, DOMAIN, self.issue_id)

    def as_dict(self) -> dict[str, object]:
        """Return the figures, for diagnostics (no names, no numbers)."""
        return {
            **self.phonebook.as_dict(),
            "file": self.file_name,
            "file_error": self.file_error,
        }
