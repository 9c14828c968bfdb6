"""The real-browser journey: a user sets up the integration and sees a call.

Started by `scripts/e2e` with `.venv-e2e` (selenium); it runs the demo of
`scripts/demo.py` (with `.venv`) without an entry and without a scenario in
`.demo/e2e`, then drives Debian's Chromium:

1. log in as the demo user;
2. add the integration (Settings → Devices & services → Add integration):
   a wrong API key first, whose error must show, then the right one;
3. open the PBX's device page;
4. name the demo's phonebook file (demo/contacts.vcf, which the demo copies
   into the configuration folder) in the integration's options;
5. inject an incoming call through the emulator's control API and see the
   call state "Ringing" on the dashboard, and the caller and the extension
   by their names from the phonebook;
6. switch the user's language and Home Assistant's to Russian (entity names
   follow Home Assistant's language, after a reload of the entry), ring a
   second call, and see "Входящий вызов", a Russian entity name and the
   caller's name;
7. end the calls: the second one answered at extension 102 after 2:15 of
   talk, then a third from the first caller, missed; see both in the
   dashboard's call list by their names from the phonebook, with the talk
   time and "→ Бухгалтерия (102)" (the answering extension's name from the
   phonebook, with its number), under the list's Russian heading.

Screenshots go to `docs/screenshots/`. Exit 0 on success, 1 with the failed
step otherwise (and a screenshot `.demo/e2e/failure.png`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".demo" / "e2e"
READY = RUN_DIR / "ready.json"
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

WRONG_KEY_ERROR = "The server refused the API key"
RINGING_EN = "Ringing"
RINGING_RU = "Входящий вызов"
CALL_STATE_EN = "Call state"
CALL_STATE_RU = "Состояние звонков"
"""The call state sensor's name in English and in Russian."""
CALL = {
    "event_type": "incoming_call",
    "payload": {
        "call_id": 1,
        "call_src": "+79161234567",
        "call_dst": "101",
        "trunk": "GSM1",
    },
}
# Their names in demo/contacts.vcf, which writes the number 8 (916) 123-45-67.
CALLER_NAME = "Мама"
CALLED_NAME = "Приёмная"
SECOND_CALL = {
    "event_type": "incoming_call",
    "payload": {
        "call_id": 2,
        "call_src": "+79690154433",
        "call_dst": "106",
        "trunk": "GSM1",
    },
}
# The second of the supplier's two numbers there (8-969-015-44-33).
SECOND_CALLER_NAME = "ООО «Стройснаб»"
# How the second call goes on: answered elsewhere, at extension 102, then
# 135 s of talk; and a third call, from the first caller, that nobody takes.
SECOND_CALL_ENDS = [
    {"event_type": "answer_elsewhere", "payload": {"call_id": "2", "number": "102"}},
    {
        "event_type": "start_talk",
        "payload": {
            "call_id": 2,
            "call_src": "+79690154433",
            "call_dst": "102",
            "trunk": "GSM1",
        },
    },
    {
        "event_type": "call_end",
        "payload": {
            "call_id": "2",
            "record_id": 2,
            "duration": 135,
            "status": "success",
        },
    },
]
MISSED_CALL = [
    {
        "event_type": "incoming_call",
        "payload": {
            "call_id": 3,
            "call_src": "+79161234567",
            "call_dst": "101",
            "trunk": "GSM2",
        },
    },
    {
        "event_type": "call_end",
        "payload": {
            "call_id": "3",
            "record_id": 3,
            "duration": 0,
            "status": "no_answer",
        },
    },
]
CALL_LIST = "sensor.sprecord_minipbx_recent_calls"
"""The entity of the call list; its markdown card on the dashboard names it."""
CALL_LIST_RU = "Последние звонки"
"""The call list sensor's name in Russian: the list card's heading."""
TIME_ZONE = "Europe/Moscow"
"""The demo's time zone, also the browser's: the times on screen agree."""

# Helpers for pages built of shadow roots (the Home Assistant frontend).
DEEP_JS = """
const deepAll = (selector, start = document) => {
  const found = [];
  const walk = (root) => {
    root.querySelectorAll(selector).forEach((e) => found.push(e));
    root.querySelectorAll('*').forEach((e) => {
      if (e.shadowRoot) walk(e.shadowRoot);
    });
  };
  walk(start);
  return found;
};
const visible = (e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
};
const deepText = (start = document.body) => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent); return; }
    if (node.nodeName === 'STYLE' || node.nodeName === 'SCRIPT') return;
    if (node.shadowRoot) walk(node.shadowRoot);
    node.childNodes.forEach(walk);
  };
  walk(start);
  return parts.join(' ').replace(/\\s+/g, ' ');
};
"""


class JourneyError(Exception):
    """A step of the journey failed."""


def log(message: str) -> None:
    """Print a progress line."""
    print(f"scripts/e2e: {message}", flush=True)


class Browser:
    """A Chromium driven by chromedriver, with helpers for shadow DOM."""

    def __init__(self, profile: str) -> None:
        """Start Chromium with a fresh profile in `profile`."""
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--lang=en-US",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(
            options=options,
            service=Service(
                executable_path=CHROMEDRIVER, env={**os.environ, "TZ": TIME_ZONE}
            ),
        )
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(60)

    def js(self, body: str, *args: Any) -> Any:
        """Run `body` with the shadow DOM helpers defined."""
        return self.driver.execute_script(DEEP_JS + body, *args)

    def text(self) -> str:
        """Return all text of the page, shadow roots included."""
        return str(self.js("return deepText();"))

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
        """Call `probe` until it returns something true."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(WebDriverException):
                result = probe()
                if result:
                    return result
            if time.monotonic() > deadline:
                raise JourneyError(
                    f"timed out after {timeout:.0f} s waiting for {what}"
                )
            time.sleep(0.3)

    def wait_text(self, text: str, timeout: float = 30) -> None:
        """Wait until `text` shows on the page."""
        self.wait(repr(text), lambda: text in self.text(), timeout)

    def markdown_card_text(self, mentioning: str) -> str | None:
        """Return the text of the markdown card whose template names `mentioning`.

        None while the dashboard has no such card on screen.
        """
        text = self.js(
            """
            const card = deepAll('hui-markdown-card').filter(visible).find(
              (c) => c._config && String(c._config.content).includes(arguments[0]));
            return card ? deepText(card) : null;
            """,
            mentioning,
        )
        return None if text is None else str(text)

    def wait_card_texts(
        self, mentioning: str, texts: tuple[str, ...], timeout: float = 30
    ) -> str:
        """Wait until the markdown card naming `mentioning` shows all `texts`."""

        def probe() -> str | None:
            text = self.markdown_card_text(mentioning)
            return text if text and all(t in text for t in texts) else None

        try:
            return str(self.wait(f"{texts} in its card", probe, timeout))
        except JourneyError as err:
            shown = self.markdown_card_text(mentioning)
            raise JourneyError(f"{err}; the card shows: {shown!r}") from err

    def field(self, selector: str, within: str = "", timeout: float = 30) -> WebElement:
        """Wait for the visible input matching `selector`, in any shadow root.

        With `within` (a tag), only inside the first element of that tag.
        """
        found = self.wait(
            f"the field {selector}",
            lambda: self.js(
                """
                const [selector, within] = arguments;
                const host = within ? deepAll(within)[0] : document;
                if (!host) return null;
                return deepAll(selector, host.shadowRoot || host).find(visible)
                  || null;
                """,
                selector,
                within,
            ),
            timeout,
        )
        if not isinstance(found, WebElement):
            raise JourneyError(f"the field {selector} is not an element")
        return found

    def fill(self, selector: str, value: str, within: str = "") -> None:
        """Replace the value of a field, typing as a user does."""
        field = self.field(selector, within)
        field.click()
        # Empty it as the frontend sees it (an input event), then type.
        self.js(
            "arguments[0].value = '';"
            "arguments[0].dispatchEvent("
            "new Event('input', {bubbles: true, composed: true}));",
            field,
        )
        field.send_keys(value)
        if field.get_property("value") != value:
            raise JourneyError(f"could not type into {selector}")

    def click_button(self, labels: tuple[str, ...], timeout: float = 30) -> str:
        """Click the visible button whose text is one of `labels`."""
        return str(
            self.wait(
                f"a button {' or '.join(labels)}",
                lambda: self.js(
                    """
                    const labels = arguments[0];
                    const button = deepAll('mwc-button, ha-button, ha-fab, button')
                      .filter(visible)
                      .find((b) => labels.includes(b.textContent.trim())
                        || labels.includes((b.getAttribute('label') || '').trim()));
                    if (!button) return null;
                    button.click();
                    return button.textContent.trim() || button.getAttribute('label');
                    """,
                    list(labels),
                ),
                timeout,
            )
        )

    def click_menu_item(self, label: str, timeout: float = 30) -> None:
        """Click the visible item of a flow's menu whose text is `label`."""
        self.wait(
            f"a menu item {label}",
            lambda: self.js(
                """
                const label = arguments[0];
                const item = deepAll(
                    'ha-md-list-item, ha-list-item, mwc-list-item')
                  .filter(visible)
                  .find((i) => i.textContent.trim().startsWith(label));
                if (!item) return null;
                item.click();
                return true;
                """,
                label,
            ),
            timeout,
        )

    def switch_server_language(self, language: str, device_id: str) -> None:
        """Set Home Assistant's language, then reload the device's entry.

        As an administrator does in Settings → System → General; through the
        frontend's own connection.
        """
        result = self.driver.execute_async_script(
            """
            const [language, deviceId, done] = arguments;
            const hass = document.querySelector('home-assistant').hass;
            const entry = hass.devices[deviceId].config_entries[0];
            hass.callWS({type: 'config/core/update', language})
              .then(() => hass.callApi(
                'POST', `config/config_entries/entry/${entry}/reload`))
              .then(() => done('ok'), (err) => done(JSON.stringify(err)));
            """,
            language,
            device_id,
        )
        if result != "ok":
            raise JourneyError(
                f"could not switch Home Assistant to {language}: {result}"
            )

    def shot(self, name: str, folder: Path = SHOTS) -> Path:
        """Save a screenshot (to docs/screenshots/ unless told)."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        self.driver.save_screenshot(str(path))
        log(f"screenshot {path.relative_to(ROOT)}")
        return path


def post_json(url: str, body: Any) -> Any:
    """POST JSON to the emulator's control API."""
    request = urllib.request.Request(  # noqa: S310 (http to 127.0.0.1 only)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def journey(browser: Browser, demo: dict[str, str]) -> None:
    """Walk the user's journey; raise JourneyError at the first failed step."""
    hass, emulator = demo["hass_url"], demo["emulator_url"]
    driver = browser.driver

    log("1. log in")
    driver.get(f"{hass}/")
    browser.wait("the login page", lambda: "/auth/authorize" in driver.current_url)
    browser.fill("input[name=username], input[autocomplete=username]", "demo")
    browser.fill("input[type=password]", demo["password"])
    browser.field("input[type=password]").send_keys(Keys.ENTER)
    browser.wait(
        "the logged-in frontend",
        lambda: (
            "/auth/authorize" not in driver.current_url
            and browser.js(
                "const h = document.querySelector('home-assistant');"
                "return !!(h && h.hass && h.hass.user);"
            )
        ),
        60,
    )

    log("2. add the integration: a wrong key, then the right one")
    driver.get(f"{hass}/config/integrations/dashboard")
    browser.click_button(("Add integration", "Add Integration"))
    browser.fill("input", "SpRecord", within="dialog-add-integration")
    browser.wait(
        "SpRecord MiniPBX in the list",
        lambda: browser.js(
            """
            const item = deepAll('ha-integration-list-item').filter(visible).find(
              (e) => e.integration && e.integration.name === 'SpRecord MiniPBX');
            return !!item;
            """
        ),
    )
    browser.shot("add-integration.png")
    browser.js(
        """
        deepAll('ha-integration-list-item').filter(visible).find(
          (e) => e.integration && e.integration.name === 'SpRecord MiniPBX').click();
        """
    )
    browser.fill("input[name=url]", emulator)
    browser.fill("input[name=api_key]", "not-the-key")
    browser.click_button(("Submit", "Next"))
    browser.wait_text(WRONG_KEY_ERROR)
    browser.shot("config-flow-error.png")
    browser.fill("input[name=api_key]", demo["api_key"])
    browser.click_button(("Submit", "Next"))
    browser.wait_text("SpRecord MiniPBX")
    browser.wait(
        "the entry to be created",
        lambda: (
            "Created configuration" in browser.text() or "Success" in browser.text()
        ),
        60,
    )
    browser.shot("config-flow-done.png")
    with contextlib.suppress(JourneyError):
        browser.click_button(("Finish",), timeout=10)

    log("3. open the PBX's device page")
    device_id = browser.wait(
        "the PBX device",
        lambda: browser.js(
            """
            const devices = document.querySelector('home-assistant').hass.devices;
            const pbx = Object.values(devices).find(
              (d) => d.manufacturer === 'SpRecord' && d.model === 'MiniPBX');
            return pbx ? pbx.id : null;
            """
        ),
    )
    driver.get(f"{hass}/config/devices/device/{device_id}")
    browser.wait_text("Call state")
    browser.wait_text("Connected", timeout=30)
    time.sleep(1)
    browser.shot("device.png")

    log("4. name the phonebook file in the integration's options")
    driver.get(f"{hass}/config/integrations/integration/sprecord")
    browser.click_button(("Configure",))
    browser.click_menu_item("Events, calls and phonebook")
    browser.fill("input[name=phonebook_file]", demo["phonebook_file"])
    time.sleep(0.5)
    browser.shot("options-phonebook.png")
    browser.click_button(("Submit", "Next"))
    # Saved: the form goes (a file the integration cannot read keeps it open,
    # with the reason under the field).
    browser.wait(
        "the options to be saved",
        lambda: (
            not browser.js(
                "return deepAll('input[name=phonebook_file]').filter(visible).length;"
            )
        ),
    )
    with contextlib.suppress(JourneyError):
        browser.click_button(("Finish",), timeout=3)

    log("5. an incoming call rings on the dashboard, by name")
    driver.get(f"{hass}/lovelace/office")
    browser.wait_text(CALL_STATE_EN)
    post_json(f"{emulator}/_emulator/events", CALL)
    browser.wait_text(RINGING_EN)
    # From the phonebook: the caller (written 8 (916) 123-45-67 there, the
    # PBX sends +79161234567) and the extension it rings.
    browser.wait_text(CALLER_NAME)
    browser.wait_text(CALLED_NAME)
    time.sleep(1)
    browser.shot("dashboard-ringing.png")

    log("6. in Russian")
    browser.js(
        "document.querySelector('home-assistant').dispatchEvent("
        "new CustomEvent('hass-language-select', {detail: 'ru'}));"
    )
    try:
        browser.wait_text(RINGING_RU, timeout=30)
    except JourneyError:
        log("the language event did not switch; trying the stored language")
        browser.js("localStorage.setItem('selectedLanguage', '\"ru\"');")
        driver.refresh()
        browser.wait_text(RINGING_RU, timeout=60)
    # Entity names are in Home Assistant's language (Settings → System →
    # General), which an entry reads as it sets up: switch it, reload the
    # entry. A call in progress does not outlive the reload; ring another.
    browser.switch_server_language("ru", device_id)
    browser.wait_text(CALL_STATE_RU, timeout=60)
    post_json(f"{emulator}/_emulator/events", SECOND_CALL)
    browser.wait_text(RINGING_RU)
    browser.wait_text(SECOND_CALLER_NAME)
    time.sleep(1)
    browser.shot("dashboard-ru.png")

    log("7. the calls end and show in the call list, by name")
    for event in [*SECOND_CALL_ENDS, *MISSED_CALL]:
        post_json(f"{emulator}/_emulator/events", event)
    # Newest first: the first caller's missed call, then the second caller's
    # answered one (2:15 of talk, taken at 102, whose phonebook name is shown
    # with its number). The names come from the
    # phonebook; the heading is the list sensor's name, now in Russian.
    shown = browser.wait_card_texts(
        CALL_LIST,
        (
            CALL_LIST_RU,
            CALLER_NAME,
            SECOND_CALLER_NAME,
            "2:15",
            "→ Бухгалтерия (102)",
        ),
    )
    if shown.index(CALLER_NAME) > shown.index(SECOND_CALLER_NAME):
        raise JourneyError(f"the call list is not newest first: {shown!r}")
    log(f"the call list shows: {shown}")
    time.sleep(1)
    browser.shot("dashboard-call-list.png")


def start_demo() -> subprocess.Popen[bytes]:
    """Start the demo without an entry; return its process."""
    READY.unlink(missing_ok=True)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with (RUN_DIR / "demo.log").open("wb") as out:
        return subprocess.Popen(
            [
                str(ROOT / os.environ.get("SPRECORD_VENV", ".venv") / "bin" / "python"),
                str(ROOT / "scripts" / "demo.py"),
                "--dir",
                str(RUN_DIR),
                "--no-entry",
                "--no-scenario",
                "--ready-file",
                str(READY),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_demo(process: subprocess.Popen[bytes]) -> None:
    """Stop the demo and wait for it (it stops its own processes)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(process: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    """Wait for the demo's ready file."""
    deadline = time.monotonic() + timeout
    while not READY.exists():
        if process.poll() is not None:
            raise JourneyError(
                f"the demo exited with {process.returncode}; see .demo/e2e/demo.log"
            )
        if time.monotonic() > deadline:
            raise JourneyError(f"the demo was not ready after {timeout:.0f} s")
        time.sleep(0.5)
    return dict(json.loads(READY.read_text()))


def main(argv: list[str] | None = None) -> int:
    """Run the journey; return the exit status."""
    parser = argparse.ArgumentParser(prog="scripts/e2e", description=__doc__)
    parser.add_argument(
        "--timeout", type=float, default=240, help="seconds for the demo to start"
    )
    args = parser.parse_args(argv)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            log(f"FAILED: {path} is missing (apt-get install chromium chromium-driver)")
            return 1
    started = time.monotonic()
    process = start_demo()
    browser = None
    profile = tempfile.mkdtemp(prefix="sprecord-e2e-chromium-")
    try:
        demo = wait_ready(process, args.timeout)
        log(f"demo ready after {time.monotonic() - started:.0f} s: {demo['hass_url']}")
        browser = Browser(profile)
        journey(browser, demo)
    except (JourneyError, WebDriverException, OSError) as err:
        log(f"FAILED: {err}".splitlines()[0])
        if browser is not None:
            with contextlib.suppress(WebDriverException):
                browser.shot("failure.png", RUN_DIR)
                log(f"on {browser.driver.current_url}")
        log("logs: .demo/e2e/demo.log, hass.log, emulator.log")
        return 1
    finally:
        if browser is not None:
            with contextlib.suppress(WebDriverException):
                browser.driver.quit()
        stop_demo(process)
        shutil.rmtree(profile, ignore_errors=True)
    log(f"journey passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
