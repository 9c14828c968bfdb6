"""Run the live demo: the emulator and a real Home Assistant with the integration.

Started by `scripts/demo` (which sets up `.venv` first); see `--help`. Also used
by `scripts/e2e`, which starts it with `--no-entry --ready-file ...`.

The Home Assistant configuration lives in `.demo/config` (git-ignored), made
anew on every run unless `--keep` is given: a small `configuration.yaml` that
loads only what the demo needs (offline, fast to start), the integration
linked into `custom_components/`, onboarding marked done, a demo login, the
dashboard of `demo/dashboard.yaml` and the phonebook `demo/contacts.vcf`. The
integration's entry is made through Home Assistant's own config flow (REST
API) once it has started, so the flow runs exactly as from the UI, and its
options flow then names the phonebook file, so the dashboard shows names.

The office scenario plays with a fixed seed (`--seed`, default
`SCENARIO_SEED`), so its callers and SMS senders are the same numbers on every
run, and `demo/contacts.vcf` names some of them, written as people write them
(`8 963 754-12-08` for the `+79637541208` the PBX sends):

- 101 Приёмная, 102 Бухгалтерия, 103 Склад: extensions the office day rings
  and calls from;
- Мама, 8 (916) 123-45-67: the call that `scripts/e2e` and the "inject a
  call" line below ring from;
- Иван Петров, two numbers: the first SMS of days one and two (he signs it);
- ООО «Стройснаб», two numbers: day one's calls at 60 s (missed) and 280 s,
  and the second call of `scripts/e2e`.

Other callers stay numbers. `--check` waits for a caller, an SMS sender and
a finished call in the recent-calls list (the dashboard's call list) shown by
name; should `emulator/scenarios.py` draw its numbers differently, it fails
there, and the file needs the new numbers.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".demo"
DASHBOARD = ROOT / "demo" / "dashboard.yaml"
CONTACTS = ROOT / "demo" / "contacts.vcf"
PHONEBOOK_FILE = "contacts.vcf"
"""Where the phonebook goes, relative to the configuration folder (the option)."""
VENV = ROOT / os.environ.get("SPRECORD_VENV", ".venv")
PYTHON = VENV / "bin" / "python"
HASS = VENV / "bin" / "hass"

USERNAME = "demo"
PASSWORD = "demo1234"  # noqa: S105 (the demo's published login)
API_KEY = "demo"
SCENARIO_SEED = 1
"""The office day's seed: demo/contacts.vcf names numbers it plays."""

CALL_STATE = "sensor.sprecord_minipbx_call_state"
RECENT_CALLS = "sensor.sprecord_minipbx_recent_calls"
LAST_SMS = "sensor.sprecord_minipbx_last_sms"
NOT_A_VALUE = {"unknown", "unavailable"}

CONFIGURATION = """\
# Made by scripts/demo: only what the demo needs, so it starts fast and offline.
homeassistant:
  name: SpRecord demo
  latitude: 55.7558
  longitude: 37.6173
  elevation: 150
  unit_system: metric
  time_zone: Europe/Moscow
  country: RU
  currency: RUB
  language: en
  internal_url: "http://127.0.0.1:{port}"

http:
  server_host: 127.0.0.1
  server_port: {port}

frontend:
config:
logbook:
recorder:
  purge_keep_days: 1
  commit_interval: 1

lovelace:
  mode: yaml

logger:
  default: warning
  logs:
    custom_components.sprecord: debug
"""

ONBOARDING = {
    "version": 4,
    "minor_version": 1,
    "key": "onboarding",
    "data": {"done": ["user", "core_config", "analytics", "integration"]},
}


class DemoError(Exception):
    """The demo could not start or its check failed."""


def log(message: str) -> None:
    """Print a progress line."""
    print(f"scripts/demo: {message}", flush=True)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Tell whether `port` on 127.0.0.1 can be bound now."""
    with socket.socket() as sock:
        # As the servers bind: a port in TIME_WAIT of a last run is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- HTTP ------------------------------------------------------------------


def http(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
    timeout: float = 10,
) -> tuple[int, Any]:
    """Make one request; return the status and the decoded JSON (or text)."""
    headers = {}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 (http to 127.0.0.1 only)
        url, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def program(process: subprocess.Popen[bytes]) -> str:
    """Return the name of the program `process` runs (for messages)."""
    args = process.args
    first = args[0] if isinstance(args, list | tuple) else args
    return Path(str(first)).name


def wait_for(
    what: str, probe: Any, timeout: float, processes: list[subprocess.Popen[bytes]]
) -> Any:
    """Call `probe` until it returns something true; raise after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            if process.poll() is not None:
                raise DemoError(
                    f"{program(process)} exited with "
                    f"{process.returncode} while waiting for {what}"
                )
        with contextlib.suppress(OSError):
            result = probe()
            if result:
                return result
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def login(base: str) -> str:
    """Log in as the demo user through the login flow; return an access token."""
    client_id = f"{base}/"
    status, flow = http(
        "POST",
        f"{base}/auth/login_flow",
        json_body={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{base}/?auth_callback=1",
        },
    )
    if status != 200:
        raise DemoError(f"login flow refused: {status} {flow}")
    status, result = http(
        "POST",
        f"{base}/auth/login_flow/{flow['flow_id']}",
        json_body={
            "client_id": client_id,
            "username": USERNAME,
            "password": PASSWORD,
        },
    )
    if status != 200 or result.get("type") != "create_entry":
        raise DemoError(f"demo login refused: {status} {result}")
    status, tokens = http(
        "POST",
        f"{base}/auth/token",
        form={
            "grant_type": "authorization_code",
            "code": result["result"],
            "client_id": client_id,
        },
    )
    if status != 200:
        raise DemoError(f"token refused: {status} {tokens}")
    return str(tokens["access_token"])


def add_entry(base: str, token: str, emulator_url: str) -> str:
    """Add the integration through Home Assistant's config flow; return its id."""
    status, form = http(
        "POST",
        f"{base}/api/config/config_entries/flow",
        json_body={"handler": "sprecord", "show_advanced_options": False},
        token=token,
    )
    if status != 200 or form.get("type") != "form":
        raise DemoError(f"could not start the config flow: {status} {form}")
    status, result = http(
        "POST",
        f"{base}/api/config/config_entries/flow/{form['flow_id']}",
        json_body={"url": emulator_url, "api_key": API_KEY},
        token=token,
        timeout=30,
    )
    if status != 200 or result.get("type") != "create_entry":
        raise DemoError(f"the config flow did not create the entry: {status} {result}")
    return str(result["result"]["entry_id"])


def set_phonebook(base: str, token: str, entry_id: str) -> None:
    """Name the phonebook file through the entry's options flow, as a user does.

    The other options keep their defaults (the form's defaults fill them in).
    """
    status, menu = http(
        "POST",
        f"{base}/api/config/config_entries/options/flow",
        json_body={"handler": entry_id, "show_advanced_options": False},
        token=token,
    )
    if status != 200 or menu.get("type") != "menu":
        raise DemoError(f"could not start the options flow: {status} {menu}")
    status, form = http(
        "POST",
        f"{base}/api/config/config_entries/options/flow/{menu['flow_id']}",
        json_body={"next_step_id": "settings"},
        token=token,
    )
    if status != 200 or form.get("type") != "form":
        raise DemoError(f"could not open the options' settings: {status} {form}")
    status, result = http(
        "POST",
        f"{base}/api/config/config_entries/options/flow/{form['flow_id']}",
        json_body={"phonebook_file": PHONEBOOK_FILE},
        token=token,
        timeout=30,
    )
    if status != 200 or result.get("type") != "create_entry":
        raise DemoError(f"the options flow refused the phonebook: {status} {result}")


def state_of(base: str, token: str, entity_id: str) -> dict[str, Any] | None:
    """Return the state object of `entity_id`, or None while it has none."""
    status, body = http("GET", f"{base}/api/states/{entity_id}", token=token)
    return body if status == 200 and isinstance(body, dict) else None


# --- configuration ---------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def copy_demo_files(config_dir: Path) -> None:
    """Copy the dashboard and the phonebook into the configuration folder."""
    shutil.copyfile(DASHBOARD, config_dir / "ui-lovelace.yaml")
    shutil.copyfile(CONTACTS, config_dir / PHONEBOOK_FILE)


def make_config(config_dir: Path, hass_port: int) -> None:
    """Make a fresh Home Assistant configuration in `config_dir`."""
    if config_dir.exists():
        shutil.rmtree(config_dir)
    config_dir.mkdir(parents=True)
    (config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=hass_port))
    copy_demo_files(config_dir)
    components = config_dir / "custom_components"
    components.mkdir()
    (components / "sprecord").symlink_to(ROOT / "custom_components" / "sprecord")
    write_json(config_dir / ".storage" / "onboarding", ONBOARDING)
    log(f"creating the login {USERNAME!r}")
    subprocess.run(
        [
            str(HASS),
            "--script",
            "auth",
            "-c",
            str(config_dir),
            "add",
            USERNAME,
            PASSWORD,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


# --- processes -------------------------------------------------------------


@contextlib.contextmanager
def running(
    args: list[str], log_path: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `args` in its own session, output to `log_path`; stop it on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                log(f"stopping {name}")
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    log(f"{name} did not stop in 30 s, killing it")
                    process.kill()
                    process.wait()


def _raise_interrupt(signum: int, _frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the processes stop cleanly."""
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Run the SpRecord emulator and a Home Assistant that uses it.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="headless: wait for a call, a finished call in the call list and "
        "an SMS to show in Home Assistant, then stop (exit 0), or fail after "
        "--timeout",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep .demo/config of the last run"
    )
    parser.add_argument(
        "--no-entry", action="store_true", help="do not add the integration"
    )
    parser.add_argument(
        "--no-scenario",
        action="store_true",
        help="do not play the office scenario (send events with the control API)",
    )
    parser.add_argument(
        "--speed", type=float, default=4.0, help="scenario pace (default 4)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SCENARIO_SEED,
        help=f"the scenario's random seed (default {SCENARIO_SEED}: the one whose "
        "callers demo/contacts.vcf names; --check expects it)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEMO_DIR,
        help="folder of the configuration and the logs (default .demo)",
    )
    parser.add_argument("--port", type=int, help="Home Assistant's port")
    parser.add_argument("--emulator-port", type=int, help="the emulator's port")
    parser.add_argument(
        "--timeout", type=float, default=240, help="seconds --check waits (240)"
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        help="when ready, write the URLs and the login here as JSON",
    )
    return parser.parse_args(argv)


def choose_ports(args: argparse.Namespace) -> tuple[int, int]:
    """Return Home Assistant's and the emulator's ports."""
    previous: dict[str, int] = {}
    state_file = args.dir / "state.json"
    if args.keep and state_file.exists():
        previous = json.loads(state_file.read_text())
    ports = []
    for wanted, key in (
        (args.port, "hass_port"),
        (args.emulator_port, "emulator_port"),
    ):
        port = wanted or previous.get(key)
        if port and not port_is_free(port):
            if wanted or key == "emulator_port":
                # A kept entry points at the old emulator port.
                raise DemoError(f"port {port} ({key}) is taken")
            port = None
        ports.append(port or free_port())
    return ports[0], ports[1]


def run(args: argparse.Namespace) -> int:
    """Start everything; serve until interrupted, or check and stop."""
    demo_dir: Path = args.dir.resolve()
    config_dir = demo_dir / "config"
    hass_port, emulator_port = choose_ports(args)
    base = f"http://127.0.0.1:{hass_port}"
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    keep = args.keep and (config_dir / ".storage" / "onboarding").exists()
    if keep:
        log(f"keeping {config_dir}")
        (config_dir / "configuration.yaml").write_text(
            CONFIGURATION.format(port=hass_port)
        )
        copy_demo_files(config_dir)
    else:
        make_config(config_dir, hass_port)
    write_json(
        demo_dir / "state.json",
        {"hass_port": hass_port, "emulator_port": emulator_port},
    )

    emulator_args = [
        str(PYTHON),
        "-m",
        "emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(emulator_port),
        "--api-key",
        API_KEY,
    ]
    if not args.no_scenario:
        emulator_args += [
            "--scenario",
            "office",
            "--speed",
            f"{args.speed:g}",
            "--seed",
            str(args.seed),
        ]
    hass_args = [str(HASS), "-c", str(config_dir), "--skip-pip", "--log-no-color"]

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        processes: list[subprocess.Popen[bytes]] = []

        def start_emulator() -> None:
            processes.append(
                stack.enter_context(
                    running(emulator_args, demo_dir / "emulator.log", "the emulator")
                )
            )
            log(f"emulator on {emulator_url} (log: {demo_dir / 'emulator.log'})")
            wait_for(
                "the emulator",
                lambda: (
                    http("GET", f"{emulator_url}/_emulator/state", timeout=2)[0] == 200
                ),
                30,
                processes,
            )

        # The scenario plays from the emulator's start, and a PBX does not
        # keep events for a client that is not there yet. For a new entry,
        # the emulator starts once Home Assistant runs, so the entry is there
        # for the first minute of the (seeded) day, whose callers the demo's
        # phonebook names. A kept entry connects as Home Assistant starts.
        if keep:
            start_emulator()
        processes.append(
            stack.enter_context(
                running(hass_args, demo_dir / "hass.log", "Home Assistant")
            )
        )
        log(f"Home Assistant starting on {base} (log: {demo_dir / 'hass.log'})")
        wait_for(
            "Home Assistant's login page",
            lambda: http("GET", f"{base}/auth/providers", timeout=5)[0] == 200,
            180,
            processes,
        )
        token = login(base)
        wait_for(
            "Home Assistant to finish starting",
            lambda: (
                http("GET", f"{base}/api/config", token=token, timeout=5)[1].get(
                    "state"
                )
                == "RUNNING"
            ),
            180,
            processes,
        )
        log(f"Home Assistant running after {time.monotonic() - started:.0f} s")
        if not keep:
            start_emulator()
        has_entry = keep and any(
            entry.get("domain") == "sprecord"
            for entry in http(
                "GET", f"{base}/api/config/config_entries/entry", token=token
            )[1]
        )
        if not args.no_entry and not has_entry:
            entry_id = add_entry(base, token, emulator_url)
            log("added the SpRecord MiniPBX entry through the config flow")
            set_phonebook(base, token, entry_id)
            log(f"named the phonebook {PHONEBOOK_FILE} in the entry's options")
        if args.ready_file:
            write_json(
                args.ready_file,
                {
                    "hass_url": base,
                    "emulator_url": emulator_url,
                    "username": USERNAME,
                    "password": PASSWORD,
                    "api_key": API_KEY,
                    "token": token,
                    "phonebook_file": PHONEBOOK_FILE,
                },
            )
        if args.check:
            check(
                base,
                token,
                args.timeout,
                processes,
                started,
                names=args.seed == SCENARIO_SEED,
            )
            return 0
        print(
            f"""
  SpRecord MiniPBX demo is running.

  Home Assistant   {base}/   (dashboard: {base}/lovelace/office)
  login            {USERNAME} / {PASSWORD}
  emulator         {emulator_url}   API key: {API_KEY}
  phonebook        {config_dir / PHONEBOOK_FILE}   (from demo/contacts.vcf)
  inject a call    curl -X POST {emulator_url}/_emulator/events -d \\
                   '{{"event_type":"incoming_call","payload":{{"call_id":1,\
"call_src":"+79161234567","call_dst":"101","trunk":"GSM1"}}}}'
  logs             {demo_dir}/hass.log, emulator.log

  Ctrl-C stops both.
""",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        dead = next(p for p in processes if p.poll() is not None)
        raise DemoError(f"{program(dead)} exited ({dead.returncode})")


def check(
    base: str,
    token: str,
    timeout: float,
    processes: list[subprocess.Popen[bytes]],
    started: float,
    *,
    names: bool = True,
) -> None:
    """Wait until a call, a listed call and an SMS of the scenario show.

    A listed call is one in the recent-calls sensor's `calls` (the list the
    dashboard shows), which holds finished calls only. With `names`, also
    until a caller, an SMS sender and a listed call show by their names from
    the phonebook (the default seed's day has all three in its first 80 s of
    scenario time: the supplier's call at 60 s goes unanswered and is listed).
    """
    seen: dict[str, str] = {}
    # Calls of this run only: a kept entry (--keep) restores its old list.
    since = datetime.now(UTC) - timedelta(seconds=time.monotonic() - started)

    def probe() -> bool:
        call = state_of(base, token, CALL_STATE)
        if call and call["state"] not in {"idle", *NOT_A_VALUE}:
            seen.setdefault("call", call["state"])
            if caller_name := call["attributes"].get("caller_name"):
                seen.setdefault(
                    "named caller", f"{caller_name} ({call['attributes']['caller']})"
                )
        recent = state_of(base, token, RECENT_CALLS)
        listed = [
            c
            for c in (recent or {}).get("attributes", {}).get("calls") or []
            if ended_since(c, since)
        ]
        if listed:
            seen.setdefault("listed call", describe_listed(listed[0]))
        if named := next((c for c in listed if c.get("name")), None):
            seen.setdefault("named listed call", describe_listed(named))
        sms = state_of(base, token, LAST_SMS)
        if sms and sms["state"] not in NOT_A_VALUE:
            # The state is when it came; the text is an attribute, in memory only.
            text = sms["attributes"].get("text") or ""
            seen.setdefault("sms", f"at {sms['state']}: {text[:60]!r}")
            if sender_name := sms["attributes"].get("sender_name"):
                seen.setdefault(
                    "named sender", f"{sender_name} ({sms['attributes']['sender']})"
                )
        return all(name in seen for name in wanted)

    wanted = ["call", "listed call", "sms"]
    if names:
        wanted += ["named caller", "named listed call", "named sender"]
    try:
        wait_for(", ".join(wanted), probe, timeout, processes)
    except DemoError as err:
        missing = [name for name in wanted if name not in seen]
        raise DemoError(f"{err}; never seen: {', '.join(missing)}") from err
    log(f"call state went to {seen['call']!r}")
    log(f"a call in the list: {seen['listed call']}")
    log(f"SMS arrived {seen['sms']}")
    if names:
        log(f"a caller by name: {seen['named caller']}")
        log(f"a call in the list by name: {seen['named listed call']}")
        log(f"an SMS sender by name: {seen['named sender']}")
    log(f"check passed after {time.monotonic() - started:.0f} s")


def ended_since(call: dict[str, Any], since: datetime) -> bool:
    """Tell whether an entry of the recent-calls list ended at `since` or later."""
    try:
        return datetime.fromisoformat(str(call.get("time"))) >= since
    except (TypeError, ValueError):
        return False


def describe_listed(call: dict[str, Any]) -> str:
    """Describe an entry of the recent-calls list for the log."""
    who = call.get("name") or call.get("number") or "?"
    if call.get("name") and call.get("number"):
        who = f"{who} ({call['number']})"
    return f"{call.get('direction')} {who} on {call.get('line')}: {call.get('result')}"


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Also when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args)
    except KeyboardInterrupt:
        log("stopped")
        return 0 if not args.check else 130
    except (DemoError, subprocess.CalledProcessError) as err:
        log(f"FAILED: {err}")
        for name in ("hass.log", "emulator.log"):
            path = args.dir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print(f"--- last lines of {path}", *tail, sep="\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
