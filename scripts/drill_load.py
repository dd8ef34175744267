"""The drill's load: signed-in people using CallIQ, from a process of its own.

`python scripts/drill_load.py --base http://127.0.0.1:17040 --seconds 600 --out var/drill/requests.jsonl`

Each virtual user signs in through the login form (a real session, through the
round-robin), then loops over what people do: the calls dashboard, scrolling
(following the page's own cursor links), filtering and sorting, opening a
call, the analytics dashboard, and the JSON API with a personal token. One
more task uploads a small WAV recording every --upload-every seconds through
the upload form (its pipeline runs on the Celery workers). Every request is
one JSON line: wall time, kind, status (0 when no response came), latency,
Retry-After and friendly-page flags for a 503, and the cache reads and hits
the server reported in Server-Timing (the fleet samples every response). A GET
on a keep-alive connection the server closed just then is retried once, as
browsers do; nothing else is retried.

Why not locust: it would add gevent and a web UI to the dev requirements for a
load this size (a few virtual users on a 2-core machine shared by others);
httpx, already pinned, with asyncio gives the same signed-in flows in ~200
lines, and the records are exactly what the report needs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import time
import wave

import httpx

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEXT_CURSOR = re.compile(r'href="(/calls/\?[^"]*cursor=[^"]+)"')
CALL_LINK = re.compile(r'href="/calls/(\d+)/"')
REP_OPTION = re.compile(r'<option value="(\d+)"[^>]*>')
FILTERS = [
    "/calls/?status=completed",
    "/calls/?outcome=won&sort=-score",
    "/calls/?sentiment=positive",
    "/calls/?sort=-duration",
    "/calls/?q=pricing",
]
# (kind, weight): what a person does next.
ACTIONS = [("dashboard", 3), ("scroll", 3), ("filter", 2), ("detail", 3), ("analytics", 1), ("api", 2)]


def recording() -> bytes:
    """One second of 8 kHz mono silence: a WAV the upload's sniffer accepts."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    return buffer.getvalue()


class Recorder:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the whole run

    def write(self, **record: object) -> None:
        self.file.write(json.dumps(record) + "\n")


def server_timing(header: str) -> dict[str, float]:
    values = {}
    for part in header.split(","):
        name, _, rest = part.strip().partition(";dur=")
        try:
            values[name] = float(rest.split(";")[0])
        except ValueError:
            continue
    return values


async def request(
    client: httpx.AsyncClient, rec: Recorder, kind: str, method: str, url: str, **kwargs: object
) -> httpx.Response | None:
    started = time.time()
    t0 = time.perf_counter()
    try:
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.RemoteProtocolError:
            if method != "GET":
                raise
            # The server closed an idle keep-alive connection as we reused it (gunicorn's
            # keep-alive is 2 s): a browser retries an idempotent request once, so do we.
            response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        rec.write(t=started, kind=kind, status=0, ms=(time.perf_counter() - t0) * 1000, error=type(exc).__name__)
        return None
    ms = (time.perf_counter() - t0) * 1000
    timing = server_timing(response.headers.get("server-timing", ""))
    record = {"t": started, "kind": kind, "status": response.status_code, "ms": ms}
    if "cache-reads" in timing:
        record |= {"cache_reads": timing["cache-reads"], "cache_hits": timing.get("cache-hits", 0)}
    if response.status_code == 503:
        record["retry_after"] = bool(response.headers.get("retry-after"))
        record["friendly"] = "back in a moment" in response.text or '"unavailable"' in response.text
    rec.write(**record)
    return response


async def sign_in(client: httpx.AsyncClient, rec: Recorder, email: str, password: str) -> bool:
    page = await request(client, rec, "login", "GET", "/accounts/login/")
    if page is None or page.status_code != 200 or not (m := CSRF.search(page.text)):
        return False
    data = {"csrfmiddlewaretoken": m.group(1), "username": email, "password": password}
    done = await request(
        client, rec, "login", "POST", "/accounts/login/", data=data, headers={"Referer": str(client.base_url)}
    )
    return done is not None and done.status_code == 302


async def person(args: argparse.Namespace, rec: Recorder, stop: float, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=args.base, timeout=args.timeout) as client:
        while time.time() < stop and not await sign_in(client, rec, args.email, args.password):
            await asyncio.sleep(2)
        next_page, call_ids = "/calls/", []
        kinds, weights = zip(*ACTIONS, strict=True)
        while time.time() < stop:
            kind = rng.choices(kinds, weights)[0]
            if kind == "dashboard" or (kind == "scroll" and next_page == "/calls/"):
                url = "/calls/"
            elif kind == "scroll":
                url = next_page
            elif kind == "filter":
                url = rng.choice(FILTERS)
            elif kind == "detail" and call_ids:
                url = f"/calls/{rng.choice(call_ids)}/"
            elif kind == "analytics":
                url = "/analytics/"
            elif kind == "api":
                response = await request(
                    client, rec, "api", "GET", "/api/v1/calls", headers={"Authorization": f"Bearer {args.token}"}
                )
                await asyncio.sleep(args.think)
                continue
            else:
                kind, url = "dashboard", "/calls/"
            response = await request(client, rec, kind, "GET", url)
            listing = url == "/calls/" or url.startswith("/calls/?")
            if response is not None and response.status_code == 200 and listing:
                text = response.text
                links = NEXT_CURSOR.findall(text)
                next_page = links[-1].replace("&amp;", "&") if links else "/calls/"
                call_ids = CALL_LINK.findall(text)[:50] or call_ids
            elif (
                response is not None
                and response.status_code == 302
                and "/login" in response.headers.get("location", "")
            ):
                await sign_in(client, rec, args.email, args.password)
            await asyncio.sleep(args.think)


async def uploader(args: argparse.Namespace, rec: Recorder, stop: float) -> None:
    audio = recording()
    n = 0
    async with httpx.AsyncClient(base_url=args.base, timeout=args.timeout) as client:
        while time.time() < stop and not await sign_in(client, rec, args.email, args.password):
            await asyncio.sleep(2)
        while time.time() < stop:
            await asyncio.sleep(args.upload_every)
            form = await request(client, rec, "upload-form", "GET", "/calls/upload/")
            if form is None or form.status_code != 200 or not (m := CSRF.search(form.text)):
                continue
            rep = REP_OPTION.search(form.text)
            n += 1
            title = f"drill-{args.run}-{n}"
            data = {
                "csrfmiddlewaretoken": m.group(1),
                "title": title,
                "customer_name": "Drill Customer",
                "customer_company": "Drill Inc",
                "direction": "inbound",
                "started_at": time.strftime("%Y-%m-%dT%H:%M", time.gmtime()),
                "rep": rep.group(1) if rep else "",
            }
            files = {"recording": (f"{title}.wav", audio, "audio/wav")}
            sent = time.time()
            response = await request(client, rec, "upload", "POST", "/calls/upload/", data=data, files=files)
            location = response.headers.get("location", "") if response is not None else ""
            if response is not None and response.status_code == 302 and (m := re.search(r"/calls/(\d+)/", location)):
                rec.write(t=sent, kind="uploaded", call_id=int(m.group(1)), title=title)


async def main_async(args: argparse.Namespace) -> None:
    rec = Recorder(args.out)
    stop = time.time() + args.seconds
    tasks = [person(args, rec, stop, seed) for seed in range(args.users)]
    await asyncio.gather(*tasks, uploader(args, rec, stop))


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Signed-in users and uploads against CallIQ, one JSON line per request."
    )
    parser.add_argument("--base", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--token", required=True, help="A personal API token (read scope).")
    parser.add_argument("--email", default="demo@calliq.example")
    parser.add_argument("--password", default="calliq-demo")
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--think", type=float, default=0.3, help="Seconds between a user's requests.")
    parser.add_argument("--upload-every", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=15.0)
    parser.add_argument("--run", default=str(int(time.time())))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
