"""A rich progress bar for training (the library itself only logs)."""

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

    def on_start(self, *, start_step: int, total_steps: int, parameters: int) -> None:
        self.console.print(f"network parameters: {parameters:,}")
        self.progress.start()
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, status="")

    def on_step(self, *, step: int, loss: float, lr: float) -> None:
        self.progress.update(self.task, completed=step, status=f"loss {loss:.3f}{self.val}")

    def on_validation(self, *, step: int, dice: float, best: float) -> None:
        self.val = f" val Dice {dice:.3f}"

    def on_end(self) -> None:
        self.progress.stop()
