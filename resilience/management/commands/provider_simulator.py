"""`python manage.py provider_simulator` serves the provider simulator
(resilience/providers/simulator.py) until killed; its subcommands drive a
running one through its control endpoint:

  provider_simulator [serve] [--host 127.0.0.1] [--port 8765]
  provider_simulator set SERVICE|all [--latency-ms N] [--failure-rate F] [--failure-status S]
                         [--fail-next N] [--outage|--no-outage] [--timeout|--no-timeout]
                         [--hang-seconds N] [--rate-limit|--no-rate-limit] [--retry-after N]
  provider_simulator stats [SERVICE]
  provider_simulator reset [--counters-only]
  provider_simulator paddle-event --org ID [--event-type T] [--status S] [--price-id P]
                         [--subscription-id ID] [--customer-id ID] [--app-url URL]
                         [--duplicates N] [--delay-ms N] [--bad-signature] [--timestamp-offset S]

The control subcommands talk to --url (default settings.PROVIDER_SIMULATOR_URL)
with the shared secret settings.PROVIDER_SIMULATOR_SECRET; `serve` listens on
loopback only and requires that secret on its control endpoint (a random one,
printed, when none is configured)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resilience.providers.simulator import SERVICES, SimulatorControl, SimulatorServer


class Command(BaseCommand):
    help = "Serve the provider simulator (default), or set its knobs, read its counters, reset it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="A loopback address (127.0.0.1, localhost, ::1).")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--url", default=None, help="A running simulator (default: PROVIDER_SIMULATOR_URL).")
        sub = parser.add_subparsers(dest="subcommand")
        sub.add_parser("serve", help="Serve until killed (the default).")
        knobs = sub.add_parser("set", help="Set a service's knobs.")
        knobs.add_argument("service", choices=[*SERVICES, "all"])
        knobs.add_argument("--latency-ms", type=float)
        knobs.add_argument("--failure-rate", type=float, help="0-1; deterministic: every 1/rate-th request fails.")
        knobs.add_argument("--failure-status", type=int, help="Status of a simulated failure (default 503).")
        knobs.add_argument("--fail-next", type=int, help="Fail the next N requests.")
        knobs.add_argument("--outage", action=argparse.BooleanOptionalAction, default=None)
        knobs.add_argument("--timeout", action=argparse.BooleanOptionalAction, default=None, help="Hang requests.")
        knobs.add_argument("--hang-seconds", type=float, help="How long a hanging request hangs (default 60).")
        knobs.add_argument("--rate-limit", action=argparse.BooleanOptionalAction, default=None, help="Answer 429.")
        knobs.add_argument("--retry-after", type=float, help="Retry-After seconds sent with 429.")
        stats = sub.add_parser("stats", help="Print the counters (JSON).")
        stats.add_argument("service", nargs="?", choices=SERVICES)
        reset = sub.add_parser("reset", help="Reset knobs and counters.")
        reset.add_argument("--counters-only", action="store_true")
        hook = sub.add_parser("paddle-event", help="Send a signed Paddle subscription webhook to the app.")
        hook.add_argument("--app-url", default="http://127.0.0.1:8000/webhooks/paddle")
        hook.add_argument("--org", dest="organization_id", help="custom_data.organization_id")
        hook.add_argument("--event-type", default="subscription.updated")
        hook.add_argument("--status", default="active")
        hook.add_argument("--price-id", default="pri_team")
        hook.add_argument("--subscription-id", default="")
        hook.add_argument("--customer-id", default="")
        hook.add_argument("--duplicates", type=int, default=0, help="Deliver the same event N more times.")
        hook.add_argument("--delay-ms", type=float, default=0, help="Deliver later (out-of-order tests).")
        hook.add_argument("--bad-signature", action="store_true", help="Sign with a wrong secret.")
        hook.add_argument("--timestamp-offset", type=float, default=0, help="Sign with a ts this far from now.")

    def handle(self, *args: Any, subcommand: str | None, **options: Any) -> None:
        if subcommand in (None, "serve"):
            self.serve(options["host"], options["port"])
            return
        control = SimulatorControl(
            options["url"] or settings.PROVIDER_SIMULATOR_URL, settings.PROVIDER_SIMULATOR_SECRET
        )
        try:
            if subcommand == "set":
                names = ["latency_ms", "failure_rate", "failure_status", "fail_next", "outage", "timeout"]
                names += ["hang_seconds", "rate_limit", "retry_after"]
                knobs = {n: options[n] for n in names if options.get(n) is not None}
                self.stdout.write(json.dumps(control.configure(options["service"], **knobs), indent=2))
            elif subcommand == "stats":
                state = control.state()["services"]
                shown = {options["service"]: state[options["service"]]} if options["service"] else state
                for body in shown.values():
                    body["counters"].pop("timestamps", None)
                self.stdout.write(json.dumps(shown, indent=2))
            elif subcommand == "paddle-event":
                names = ["organization_id", "event_type", "status", "price_id", "subscription_id", "customer_id"]
                names += ["duplicates", "delay_ms", "bad_signature"]
                fields = {n: options[n] for n in names if options.get(n) not in (None, "")}
                answer = control.paddle_event(
                    options["app_url"], timestamp_offset_seconds=options["timestamp_offset"], **fields
                )
                self.stdout.write(json.dumps({k: answer[k] for k in ("event_id", "deliveries")}, indent=2))
            elif subcommand == "reset":
                control.reset_counters() if options["counters_only"] else control.reset()
                self.stdout.write(self.style.SUCCESS("simulator reset"))
        except httpx.HTTPError as exc:
            raise CommandError(f"simulator at {control.url} did not answer: {exc}") from exc
        finally:
            control.close()

    def serve(self, host: str, port: int) -> None:
        logging.getLogger("calliq.simulator").setLevel(logging.INFO)
        try:
            server = SimulatorServer(
                host,
                port,
                secret=settings.PROVIDER_SIMULATOR_SECRET or None,
                paddle_webhook_secret=settings.PROVIDERS["paddle"]["webhook_secret"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not settings.PROVIDER_SIMULATOR_SECRET:
            self.stdout.write(f"PROVIDER_SIMULATOR_SECRET is not set: the control endpoint's secret is {server.secret}")

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"provider simulator on {server.url} (control: {server.url}/_sim/state); Ctrl-C stops it")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.state.stopping.set()
            server.server_close()
            self.stdout.write("provider simulator stopped")
