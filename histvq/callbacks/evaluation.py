"""Evaluate segmentation inside training: at the end of fit and, optionally, every N epochs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from histvq.evaluation import EvaluationResult, evaluate_module, write_evaluation
from histvq.metrics import METRIC_KEYS

log = logging.getLogger(__name__)


class SegmentationEvaluation(Callback):
    """Predicts every sequence with the current model and logs MoF/Edit/F1/JSD.

    At the end of training it also writes ``metrics.json``, per-sequence predictions and
    plots to ``output_dir`` (rank 0 only) and hands the plots to loggers that take images.
    Under DDP every process predicts its own shard; the metric gathers the sequences.

    Args:
        output_dir: run folder for the final outputs (None: log only).
        every_n_epochs: also evaluate after every N-th epoch (0: only at the end).
        plots, max_sequence_plots, bin_width, write_predictions: what the final evaluation
            writes (see :func:`histvq.evaluation.write_evaluation`).
        unmatched: the Hungarian pairing convention (``square_assignment``, the reference's,
            or ``own_identity``; see :func:`histvq.metrics.match_predictions`).
    """

    def __init__(
        self,
        output_dir: str | None = None,
        every_n_epochs: int = 0,
        plots: bool = True,
        max_sequence_plots: int = 8,
        bin_width: int = 20,
        write_predictions: bool = True,
        unmatched: str = "square_assignment",
    ):
        super().__init__()
        self.unmatched = unmatched
        self.output_dir = Path(output_dir) if output_dir else None
        self.every_n_epochs = every_n_epochs
        self.plots, self.max_sequence_plots = plots, max_sequence_plots
        self.bin_width, self.write_predictions = bin_width, write_predictions
        self.last_result: EvaluationResult | None = None

    def _evaluate(self, trainer: L.Trainer, module: L.LightningModule) -> EvaluationResult:
        datamodule = trainer.datamodule
        return evaluate_module(
            module,
            datamodule,
            bin_width=self.bin_width,
            unmatched=self.unmatched,
            num_replicas=trainer.world_size,
            rank=trainer.global_rank,
        )

    @staticmethod
    def _flat(result: EvaluationResult) -> dict[str, float]:
        return {
            f"eval/{matching}/{key}": value
            for matching, scores in result.metrics.items()
            for key, value in scores.items()
        }

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if self.every_n_epochs <= 0 or epoch % self.every_n_epochs or last:
            return
        result = self._evaluate(trainer, module)
        for key, value in self._flat(result).items():
            module.log(key, value, rank_zero_only=True)

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        result = self._evaluate(trainer, module)
        self.last_result = result
        if not trainer.is_global_zero:
            return
        metrics = self._flat(result)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        plot_paths: list[Path] = []
        if self.output_dir is not None:
            plot_paths = write_evaluation(
                result,
                self.output_dir,
                plots=self.plots,
                max_sequence_plots=self.max_sequence_plots,
                write_predictions=self.write_predictions,
            )
        for logger in trainer.loggers:
            if getattr(logger, "log_table", None) is not None:
                _log_table(logger, result, trainer.global_step)
            if getattr(logger, "log_image", None) is not None and plot_paths:
                _log_plots(logger, plot_paths, trainer.global_step)


def _log_table(logger: Any, result: EvaluationResult, step: int) -> None:
    """The final metrics as one table (W&B): a row per matching."""
    columns = ["matching", *METRIC_KEYS, "sequences", "frames"]
    rows = [
        [matching, *(scores[k] for k in METRIC_KEYS), len(result.names), result.num_frames]
        for matching, scores in result.metrics.items()
    ]
    logger.log_table(key="eval/metrics_table", columns=columns, data=rows, step=step)


def _log_plots(logger: Any, paths: list[Path], step: int) -> None:
    """Hand plots to a logger with ``log_image`` (W&B): the histogram and sequence plots."""
    lengths = [p for p in paths if p.name == "segment_lengths.png"]
    sequences = [p for p in paths if p not in lengths]
    if lengths:
        logger.log_image(key="plots/segment_lengths", images=[str(lengths[0])], step=step)
    if sequences:
        logger.log_image(
            key="plots/segmentation",
            images=[str(p) for p in sequences],
            caption=[p.stem for p in sequences],
            step=step,
        )
