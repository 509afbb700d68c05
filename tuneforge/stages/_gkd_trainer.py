"""The trainer a `distill` run with ``mode: token`` uses: TRL's GKDTrainer with tuneforge's trainer
behaviour (atomic checkpoints, the method's optimizer, the all-masked-batch and NaN guards). GKD's loss
(`GKDTrainer.generalized_jsd_loss`) is used as TRL defines it: beta 0 is KL(teacher || student), beta 1
is KL(student || teacher), in between the generalized JSD."""

from __future__ import annotations

import os

from tuneforge.training.trainer import TuneforgeTrainer

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # GKD lives in trl.experimental in TRL 1.x

from trl.experimental.gkd import GKDConfig, GKDTrainer  # noqa: E402

__all__ = ["GKDConfig", "TuneforgeGKDTrainer"]


class TuneforgeGKDTrainer(TuneforgeTrainer, GKDTrainer):
    pass
