"""The bot process: no token, heartbeat on /readyz, clean stop on SIGTERM (in-flight commands finish, new
ones are told to retry), and the outer reconnect loop with backoff."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from io import StringIO

import aiohttp
import nextcord
import pytest
from django.core.management import call_command

from accounts.services import discord_link_code_issue, discord_link_redeem
from bot.discord import commands as bot_commands
from bot.discord.render import Reply
from bot.discord.runner import BotRunner
from core.heartbeats import DISCORD_BOT, heartbeat_beat
from tests.bot.discord_fake import command_payload, run, running_bot

ALICE = "900000000000000001"


def test_runbot_without_a_token_says_in_one_line_how_to_turn_it_on(settings):
    settings.DISCORD_BOT_TOKEN = ""
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("runbot", stdout=out)
    assert exit_info.value.code == 0
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and "DISCORD_BOT_TOKEN" in lines[0] and "off" in lines[0]


def test_readyz_reports_the_bot_heartbeat_without_depending_on_it(db, client, settings):
    settings.DISCORD_BOT_TOKEN = ""
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["discord_bot"] == "off"

    settings.DISCORD_BOT_TOKEN = "bot-token"
    heartbeat_beat(DISCORD_BOT, now=time.time() - 120)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["discord_bot"] == "stale"

    heartbeat_beat(DISCORD_BOT)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["discord_bot"] == "ok"


def test_stopping_finishes_commands_in_flight_and_turns_new_ones_away(user_a, monkeypatch):
    _, code = discord_link_code_issue(user=user_a)
    discord_link_redeem(discord_user_id=ALICE, code=code)
    started, release = threading.Event(), threading.Event()

    def slow_usage(member, user):
        started.set()
        release.wait(timeout=30)
        return Reply(title="Finished after the stop")

    monkeypatch.setitem(bot_commands.COMMANDS, "usage", (slow_usage, True))

    async def scenario():
        async with running_bot(defer_after=30) as (bot, fake):
            runner = BotRunner(token="t", client_factory=lambda **kw: bot, grace=30)
            bot._connection.parse_interaction_create(_with_id(bot, command_payload("usage", user_id=ALICE)))
            await asyncio.to_thread(started.wait, 30)
            stopping = asyncio.create_task(runner.shutdown(bot))
            await asyncio.sleep(0)  # let the shutdown begin: the bot now refuses new commands
            assert bot.stopping
            late = _with_id(bot, command_payload("help", user_id=ALICE))
            before = set(asyncio.all_tasks())
            bot._connection.parse_interaction_create(late)
            await asyncio.gather(
                *[t for t in asyncio.all_tasks() - before if t.get_name().startswith("nextcord:")]
            )
            assert not stopping.done()  # still waiting for the slow command
            release.set()
            await asyncio.wait_for(stopping, timeout=30)
            assert bot.is_closed()
            return fake

    fake = run(scenario())
    titles = [e["title"] for e in fake.embeds()]
    assert titles == ["Restarting", "Finished after the stop"]


def _with_id(bot, payload: dict) -> dict:
    command = next(c for c in bot.get_all_application_commands() if c.name == payload["data"]["name"])
    payload["data"]["id"] = str(command.command_ids[None])
    return payload


class FakeClient:
    """Stands in for NexusBot in the runner's loop: `failures` to raise on login, then connected."""

    def __init__(self, script: list, **kwargs) -> None:
        self.script = script
        self.closed = False
        self.stopping = False
        self.ready_once = asyncio.Event()
        self.connected = asyncio.Event()

    async def login(self, token: str) -> None:
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step

    async def connect(self, *, reconnect: bool) -> None:
        self.ready_once.set()
        self.connected.set()
        await asyncio.Event().wait()  # the gateway session, until closed

    def is_ready(self) -> bool:
        return self.ready_once.is_set() and not self.closed

    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True

    async def drain(self, *, timeout: float) -> int:
        self.stopping = True
        return 0


def test_login_failures_are_retried_with_backoff_and_sigterm_stops_cleanly():
    script: list = [OSError("network down"), aiohttp.ClientConnectionError("connection reset"), "ok"]
    clients: list[FakeClient] = []
    beats: list[float] = []

    def factory(**kwargs):
        client = FakeClient(script, **kwargs)
        clients.append(client)
        return client

    async def scenario():
        runner = BotRunner(
            token="t",
            client_factory=factory,
            backoff_start=0.01,
            heartbeat_every=0.01,
            beat=lambda: beats.append(time.time()),
        )
        runner.install_signal_handlers()
        task = asyncio.create_task(runner.run())
        while not (clients and clients[-1].connected.is_set() and beats):
            await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        return await asyncio.wait_for(task, timeout=10), runner

    code, runner = run(scenario())
    assert code == 0
    assert runner.attempts == 3 and len(clients) == 3
    assert all(client.closed for client in clients)
    assert clients[-1].stopping  # drained before closing
    assert beats  # the heartbeat beat while connected


def test_a_rejected_token_stops_the_process():
    script: list = [nextcord.LoginFailure("Improper token has been passed.")]

    async def scenario():
        runner = BotRunner(token="t", client_factory=lambda **kw: FakeClient(script), backoff_start=0.01)
        return await asyncio.wait_for(runner.run(), timeout=10)

    assert run(scenario()) == 1


def _launcher():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "nexus.py"
    spec = importlib.util.spec_from_file_location("nexus_launcher_bot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("token", ["", "bot-token"])
def test_make_run_starts_the_bot_only_with_a_token(monkeypatch, capsys, tmp_path, token):
    launcher = _launcher()
    started: list[list[str]] = []

    class Process:
        def __init__(self, args, **kwargs):
            started.append(args)

        def wait(self):
            return 0

    monkeypatch.setattr(launcher, "resolve_services", lambda **_: {"DISCORD_BOT_TOKEN": token})
    monkeypatch.setattr(launcher, "manage", lambda env, *args: None)
    monkeypatch.setattr(launcher.subprocess, "Popen", Process)
    monkeypatch.setattr(launcher, "ROOT", tmp_path)
    (tmp_path / "Procfile").write_text("web: daphne\nworker: celery\nbot: python manage.py runbot\n")
    assert launcher.run(None) == 0
    names = started[0][started[0].index(str(tmp_path)) + 1 :]
    out = capsys.readouterr().out
    if token:
        assert names == ["web", "worker", "bot"] and "Discord bot" not in out
    else:
        assert names == ["web", "worker"]
        lines = [line for line in out.splitlines() if "Discord bot" in line]
        assert len(lines) == 1 and "DISCORD_BOT_TOKEN" in lines[0]


def test_the_runbot_process_retries_a_failing_connection_and_stops_cleanly_on_sigterm():
    """The real process: Discord unreachable (nothing listens on the port), so it logs the failure and
    backs off; SIGTERM then ends it with exit code 0 and a logged clean stop."""
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, DISCORD_BOT_TOKEN="test-token", DISCORD_API_BASE="http://127.0.0.1:9/api/v10")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runbot", "--metrics-port", "0"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "discord.connect_failed" in line:
                break
        process.send_signal(signal.SIGTERM)
        lines += process.stdout.read().splitlines()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    log = "".join(lines)
    assert "ConnectionRefusedError" in log and "port=9" in log and "retry_in=1.0" in log
    assert "discord.stopping" in log and "signal=SIGTERM" in log and "discord.stopped" in log
