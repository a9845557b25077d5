"""Training progress: a rich progress bar on a terminal, a plain line every 5% of the steps (and at each
validation) in a log file, e.g. a cluster job's (the library itself only logs)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from lesionseg.training.trainer import TrainingCallback


class RichTrainingProgress(TrainingCallback):
    """Steps, loss, learning rate, last validation Dice and ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None
        self.val = ""

        self.total = 0
        self.every = 1

    @property
    def plain(self) -> bool:
        """No terminal: plain lines instead of a live bar."""
        return not self.console.is_terminal

    def on_start(self, *, start_step: int, total_steps: int, parameters: int) -> None:
        self.console.print(f"network parameters: {parameters:,}")
        self.total, self.every = total_steps, max(1, total_steps // 20)
        if not self.plain:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total_steps, completed=start_step, status="")

    def on_step(self, *, step: int, loss: float, lr: float) -> None:
        if not self.plain:
            self.progress.update(self.task, completed=step, status=f"loss {loss:.3f}{self.val}")
        elif step % self.every == 0 or step == self.total:
            self.console.print(f"train step {step}/{self.total}: loss {loss:.4f}, lr {lr:.2e}{self.val}", highlight=False)

    def on_validation(self, *, step: int, dice: float, best: float) -> None:
        self.val = f" val Dice {dice:.3f}"
        if self.plain:
            self.console.print(f"train step {step}/{self.total}: val Dice {dice:.3f} (best {best:.3f})", highlight=False)

    def on_end(self) -> None:
        if not self.plain:
            self.progress.stop()
