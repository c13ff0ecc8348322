"""toyvisor debug on a real terminal: tmux types the commands and the test reads the screen."""

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux)")


class Terminal:
    """A tmux server of its own (a private socket) running one command in an 160x48 pane."""

    def __init__(self, tmp_path, command: list[str]) -> None:
        self.socket = str(tmp_path / "tmux.sock")
        self.env = {**os.environ, "TERM": "xterm-256color"}
        self.env.pop("TMUX", None)
        self.tmux("new-session", "-d", "-x", "160", "-y", "48", "-s", "debug",
                  " ".join(shlex.quote(part) for part in command))

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], env=self.env, check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "debug")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "debug", *keys)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if screen.count(text) >= count:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} ({count}x) never appeared; screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=30)


def test_typing_commands_into_the_monitor(tmp_path):
    terminal = Terminal(tmp_path, [sys.executable, "-m", "toyvisor.tools.cli", "debug",
                                   "nanobench", "--vmm", "trap-emulate", "--input", "popf 1"])
    try:
        terminal.wait_for("(toyvisor)")
        terminal.type("break popf.s:14", "Enter")
        terminal.wait_for("breakpoint 1 at")
        # completion: "cont" + Tab completes the command name
        terminal.type("cont", "Tab")
        terminal.wait_for("(toyvisor) continue")
        terminal.type("Enter")
        screen = terminal.wait_for("breakpoint 1\n")
        assert "popf" in screen.split("breakpoint 1\n")[1]
        terminal.type("regs", "Enter")
        screen = terminal.wait_for("real machine")
        assert "IF    0" in screen
        # history: the up arrow brings back the last command
        terminal.type("stepi", "Enter")
        terminal.wait_for("pushf")
        terminal.type("reverse-stepi", "Enter")
        terminal.wait_for("(toyvisor) reverse-stepi")
        terminal.type("Up")
        terminal.wait_for("(toyvisor) reverse-stepi", count=2)
        terminal.type("C-u", "nonsense", "Enter")
        terminal.wait_for("error: unknown command 'nonsense'")
        terminal.type("continue", "Enter")
        terminal.wait_for("the guest halted")
        terminal.type("quit", "Enter")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the monitor exits: its pane (and session) close
            try:
                terminal.screen()
            except subprocess.CalledProcessError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the monitor did not exit on quit")
    finally:
        terminal.close()
