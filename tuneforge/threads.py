"""How many CPU threads PyTorch uses: chosen when a `tuneforge` command's process starts (the
`start_process` of train, chat, eval and serve; sweep and bench choose once for all their
candidates), from the cores the machine has free then.

PyTorch's default is one OpenMP thread per core, and each parallel op waits for its slowest
thread. When another process keeps a core busy, the thread on that core runs only in the slices
the scheduler gives it, so every op waits for it and a training step gets many times slower than
with one thread fewer (bench/bench_threads.py; figures in bench/RESULTS.md). So the automatic
choice is the usable cores (affinity, capped by a cgroup CPU quota) minus the cores other processes
kept busy during a 0.1 s sample of /proc/stat, and never below 1; when other processes are busy,
waiting threads also sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``, which libgomp, the
OpenMP of PyTorch's Linux wheels, reads when torch loads, as do Intel's and LLVM's runtimes).

What wins, first to last: ``train.num_threads`` in the config, the user's own ``OMP_NUM_THREADS``,
the choice a parent sweep made for every candidate (``TUNEFORGE_THREADS``), the automatic choice.
A library call (`tuneforge.train.run_training`) never chooses; it applies ``train.num_threads``
for the duration of the call only (`scoped`), and `tuneforge.cli.main` called inside another program
gives that program its thread count back at the end (`command`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PARENT_ENV = "TUNEFORGE_THREADS"  # set by sweep / bench for their candidates (child processes)
SAMPLE_S = 0.1
PROC_STAT = Path("/proc/stat")
CGROUP = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")
_PENDING: list[str] = []  # the line of this command's choice, until a model loads (`announce`)


@dataclass(frozen=True)
class Choice:
    """``threads`` for PyTorch out of ``cores`` usable ones; ``source`` says who chose: "auto",
    "config" (train.num_threads), "env" (OMP_NUM_THREADS) or "parent" (a sweep's choice)."""

    threads: int
    cores: int
    source: str
    busy: int = 0  # cores other processes kept busy during the sample (auto only)

    def line(self, how_to_choose: str, each: str = "") -> str:
        """One line for the user: what was chosen (``each``: for whom), why, and how to choose
        otherwise."""
        head = f"threads: {self.threads} of {self.cores} cores{each}"
        if self.source == "config":
            return f"{head} (train.num_threads)"
        if self.source == "env":
            return f"{head} (OMP_NUM_THREADS={self.threads} in the environment)"
        if self.source == "parent":
            return f"{head} (chosen once for every candidate); {how_to_choose}"
        if self.threads < self.cores:
            who = "another process is" if self.busy == 1 else "other processes are"
            return f"{head} ({who} busy on {self.busy}); {how_to_choose}"
        return f"{head}; {how_to_choose}"

    @property
    def contended(self) -> bool:
        return self.source == "auto" and self.busy > 0


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.floor(quota)) if quota else cores)


def _cgroup_quota() -> float | None:
    """CPUs' worth of time the cgroup quota allows (cgroup v2 cpu.max, v1 cfs_quota_us); None: no quota."""
    try:
        lines = SELF_CGROUP.read_text().splitlines()
    except OSError:
        lines = []
    own = next((ln[3:] for ln in lines if ln.startswith("0::")), "/")
    for folder in (CGROUP / own.lstrip("/"), CGROUP):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        except (OSError, ValueError):
            pass
    try:
        quota = int((CGROUP / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((CGROUP / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks of each CPU since boot, from /proc/stat ({} where unreadable)."""
    try:
        lines = PROC_STAT.read_text().splitlines()
    except OSError:
        return {}
    ticks = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            values = [int(v) for v in fields[:8]]
            ticks[int(name[3:])] = (sum(values) - values[3] - values[4], sum(values))
    return ticks


def busy_cores(sample_s: float = SAMPLE_S) -> float:
    """How many of this process's CPUs other processes kept busy over ``sample_s`` seconds, while
    this one slept (0.0 where /proc/stat cannot be read)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return 0.0
    before = _cpu_ticks()
    if not before:
        return 0.0
    time.sleep(sample_s)
    after = _cpu_ticks()
    busy = total = 0
    for cpu in cpus & before.keys() & after.keys():
        busy += after[cpu][0] - before[cpu][0]
        total += after[cpu][1] - before[cpu][1]
    return busy / total * len(cpus) if total > 0 else 0.0


def free_cores(cores: int | None = None, busy: float | None = None) -> tuple[int, int]:
    """(the cores other processes leave free, never below 1; the busy cores counted)."""
    cores = usable_cores() if cores is None else cores
    try:
        online = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        online = cores
    taken = round(busy_cores() if busy is None else busy)
    # a quota caps what this process gets, while the busy cores are counted among all it may run on
    return max(1, min(cores, online - taken)), taken


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number if number > 0 else None


def choose(setting: object = None, env: dict | None = None) -> Choice:
    """The thread count for this process: ``setting`` (train.num_threads, as read unvalidated: a
    value that is no positive whole number is left to validation), else OMP_NUM_THREADS, else a
    parent's choice, else the free cores."""
    env = os.environ if env is None else env
    cores = usable_cores()
    for value, source in (
        (setting, "config"),
        (env.get("OMP_NUM_THREADS"), "env"),
        (env.get(PARENT_ENV), "parent"),
    ):
        number = _positive_int(value)
        if number:
            return Choice(number, cores, source)
    threads, busy = free_cores(cores)
    return Choice(threads, cores, "auto", busy)


def apply(choice: Choice, fresh_process: bool) -> None:
    """Make ``choice`` take effect: the wait policy first (only in a ``fresh_process``, before torch
    loads its OpenMP; never over the user's own), then the thread count."""
    if fresh_process and choice.contended and "torch" not in sys.modules:
        if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"} & os.environ.keys():
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    # a fresh process's torch has read OMP_NUM_THREADS as it loaded: then there is nothing to set
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)


def start(
    argv: list[str],
    fresh_process: bool,
    *,
    setting: object = None,
    how_to_choose: str = "set OMP_NUM_THREADS to choose",
) -> Choice | None:
    """A command's process start: choose and apply; the line saying so waits for `announce`
    (rank 0 only in a distributed run). Nothing for help, or without a word to run on (argparse
    refuses that command line)."""
    if {"-h", "--help", "--help-config"} & set(argv) or all(a.startswith("-") for a in argv):
        return None
    choice = choose(setting)
    apply(choice, fresh_process)
    if os.environ.get("RANK", "0") == "0":
        _PENDING[:] = [choice.line(how_to_choose)]
    return choice


def announce() -> None:
    """Log the line of the command's choice, once, when the first model loads
    (`tuneforge.models.load.load_model`) or the first candidate starts (`tuneforge.runs.candidates`):
    where the thread count starts to matter, after the command line and the config passed their
    checks, so that a refusal stays one line."""
    if _PENDING:
        logging.getLogger("tuneforge").info(_PENDING.pop())


def config_setting(argv: list[str]) -> int | None:
    """``train.num_threads`` of the config a command line names (its first ``.yaml`` word) with its
    ``key=value`` words applied, read unvalidated (the run validates it); None where unset or unreadable."""
    from tuneforge.config.deprecations import upgrade
    from tuneforge.config.raw import read_raw
    from tuneforge.errors import ConfigError

    words = [a for a in argv if not a.startswith("-")]
    path = next((w for w in words if w.endswith((".yaml", ".yml")) and "=" not in w), None)
    try:
        train = upgrade(read_raw(path, [w for w in words if "=" in w]), "config", quiet=True).get("train")
    except ConfigError:
        return None
    return _positive_int(train.get("num_threads")) if isinstance(train, dict) else None


def choose_for_children(argv: list[str], fresh_process: bool) -> Choice | None:
    """Sweep and bench: one automatic choice for all their candidates (child `tuneforge train`
    processes, one at a time, so their speeds compare), passed down in ``TUNEFORGE_THREADS``. None
    where the user chose (OMP_NUM_THREADS, train.num_threads in the config, an override or the grid)
    or for ``--help``; inside another program (not ``fresh_process``) each candidate chooses itself."""
    if not fresh_process or {"-h", "--help"} & set(argv) or "OMP_NUM_THREADS" in os.environ:
        return None
    if any("train.num_threads" in a for a in argv) or config_setting(argv) is not None:
        return None
    choice = choose(None, {})
    os.environ[PARENT_ENV] = str(choice.threads)
    _PENDING[:] = [choice.line("set train.num_threads to choose", " for every candidate")]
    return choice


@contextmanager
def scoped(threads: int | None) -> Iterator[None]:
    """``threads`` for PyTorch inside the block, the count before restored after (a library call)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def command(fresh_process: bool) -> Iterator[None]:
    """Around one command: its line is never left for the next, and a command run inside another
    program (not ``fresh_process``) gives back that program's PyTorch thread count when it ends."""
    torch = None if fresh_process else sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        _PENDING.clear()
        if before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)
