"""README.md's promises about itself: `.ci/run` runs the quick-start commands, word for word."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_quick_start_commands_in_order():
    commands = quick_start_commands()
    assert len(commands) == 2 and commands[1].endswith("-m pytest")
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd ", "rm ", "command -v chromium "))]
    assert ci == commands


def test_ci_installs_the_chromium_the_readme_names_for_the_browser_tests():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    install = re.search(r"`(apt-get install -y chromium)`", section).group(1)
    [line] = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.startswith("command -v chromium ")]
    assert install in line
