"""How to train: a small dataclass of plain values, sent to the trainer process and recorded in each
round of a model's summary. No torch here, so the viewer can build it at no cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...errors import UserInputError

# parts of TrainConfig.augment_strength="wide" that augment_without may leave out; "gamma" covers
# gamma, contrast and brightness, "scale" narrows the scale range 0.6-1.6 back to the mild 0.85-1.2,
# "colour" drops the per-channel gain and shift of images with several channels
WIDE_AUGMENT_PARTS = ("invert", "gamma", "blur", "noise", "scale", "colour")


@dataclass
class TrainConfig:
    """How to train. Training stops at whichever of ``steps``/``time_budget`` (s) comes first.

    Small batches of 96-pixel patches are deliberate on a CPU: within a time
    budget, more updates beat bigger batches (BBBC039 train fields, 20 s: Dice
    0.93 with 4 x 96^2 against 0.86 with 8 x 128^2). A GPU runs 32 x 128^2 at
    almost the same step rate (H100: 47 against 57 steps/s), so it gets those.
    3D models train on 2 (GPU: 8) patches of ``patch_depth`` x 64^2 (GPU: 128^2) voxels.

    patch_depth: planes per 3D patch; None: a physically cubic patch from the model's
    voxel size, at most 16 planes on the CPU and 32 on a GPU, and no deeper than the volumes.

    preview_every: seconds between Preview events (only when a preview image is given);
    the first preview comes after ``first_preview`` seconds.
    """

    steps: int | None = None
    time_budget: float | None = 30.0
    batch_size: int | None = None  # None: 4 on the CPU (8 with bf16 on AMX), 32 on a GPU
    patch_size: int | None = None  # None: 96 on the CPU, 128 on a GPU (3D: 64, 128)
    patch_depth: int | None = None  # 3D models only
    learning_rate: float = 1e-2  # train fields, 4 x 96^2: Dice after 5 s 0.87 -> 0.95 against 3e-3, same at 30 s
    # fine-tuning a bundled generalist (a model whose summary has a "card", and models made from it):
    # 1e-2 wiped out what it knew (4 BBBC039 train fields, scribbles, 120 steps: F1 0.978 -> 0.848),
    # 5e-4 keeps it (0.969) and still lets a stroke win over it (tests/engine/test_bundled.py); None: learning_rate
    fine_tune_learning_rate: float | None = 5e-4
    # continuing to train a model of one's own (the widget's next Train, train --init); None:
    # learning_rate. Too low keeps the model still and ignores the corrections (benchmarks/retrain.py,
    # 4 Usiigaci train fields, no prior term: of the pixels of 5 correcting dabs, 69 % came out right
    # at 1e-2, 49 % at 3e-3 and none at 1e-3); at 1e-2 a fresh optimizer sometimes knocked a trained
    # model over (8 Usiigaci train fields, 5 suggested dabs, 150 steps, 52 seeds per rate: Dice
    # +0.011, 4 runs below -0.05, worst -0.171; at 5e-3: +0.023, worst -0.050; dab pixels right
    # 0.46 -> 0.43, 0.43 -> 0.37 in retrain.py --arms suggested; benchmarks/reports/12-regions-to-check.md, "A calmer
    # continued run")
    continue_learning_rate: float | None = 5e-3
    # fine-tuning a bundled generalist: weight of the loss that keeps its prediction where nothing is
    # painted (losses.prior_loss); 0 turns it off. A trade-off (benchmarks/objects.py --prior-weights,
    # 4 Usiigaci train fields from cells, correction round F1: 0 -> 0.682, 1 -> 0.729, 3 -> 0.749,
    # 10 -> 0.748; BBBC039 train from nuclei: no change): a stroke calling a real nucleus background
    # turns 66 % of it in 250 steps at 1, 99 % at 0 (which also changed 5 % of the unpainted pixels), 31 % at 3
    prior_weight: float = 1.0
    # continuing to train a model of one's own (the widget's next Train, train --init): the same
    # term. Without it a retraining restarted at 1e-2 undid what the model had right
    # (benchmarks/retrain.py, 4 Usiigaci train fields, 150 steps after 300, Dice / F1 change with the
    # same strokes and with 5 oracle dabs: 0 -> -0.008 / -0.048 and -0.023 / -0.034; 0.3 -> +0.014 /
    # +0.029 and -0.004 / +0.017; 1 -> +0.003 / +0.019 and +0.014 / +0.015), but the more it keeps,
    # the less the corrections take (share of the dabs' pixels right after: 0.63, 0.52, 0.23). It
    # costs a forward pass of the starting network per step (13.6 -> 10.7 steps/s). 0 turns it off
    continue_prior_weight: float = 0.3
    # share of the patches centred anywhere in the images, painted or not, while the prior term is on (the term
    # acts only where patches land; around the strokes alone, the rest of the field is held by nothing).
    # Measured and not kept (benchmarks/reports/13-rounds.md, "The prior term over the whole field"): at 0.25,
    # DSB2018 val, 16 images from nuclei, mean F1 by round 0.838 -> 0.877 -> 0.884 -> 0.899 -> 0.908 against
    # 0.838 -> 0.867 -> 0.869 -> 0.899 -> 0.895, but pooled over the objects 0.856 against 0.862 after round 4;
    # Usiigaci val from cells 0.894 against 0.907; and an erased real nucleus turned background on 46 % of its
    # pixels in 250 steps, against 66 % (0: off)
    prior_patches: float = 0.0
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads; None: the cores other programs leave free (device.configure_cpu_threads)
    augment: bool = True
    intensity_augment: bool = True
    # "mild" (flips, turns, a small affine, mild intensity: what a few strokes on one image need) or
    # "wide" (also inversion, gamma, contrast, blur, noise, scales 0.6-1.6: a generalist's training)
    augment_strength: str = "mild"
    # parts of the "wide" augmentation to leave out (WIDE_AUGMENT_PARTS), to measure what each adds
    # (tools/train_bundled_model.py --without)
    augment_without: tuple = ()
    # edge-aware gated CRF term (losses.py); 0 turns it off. None: 3 for 2D models, 0 for 3D
    # ones (in-plane only there, it cost a quarter of the step time and lowered Dice on the
    # synthetic volumes of benchmarks/volumes.py: 0.74 against 0.77 after 30 s)
    crf_weight: float | None = None
    crf_sigma: float = 0.05  # intensity difference (normalised units) still "alike"
    # each class weighs the same in the loss however much of it is painted; None: when whole objects
    # are painted (Usiigaci train field, 5 objects + scribbles, 30 s: foreground Dice 0.61 -> 0.74),
    # not for scribbles alone (0.75 -> 0.72 there)
    balanced_classes: bool | None = None
    # batch norm keeps its running statistics (its layers in eval mode while the rest trains), as a
    # fine-tune of a pretrained network usually does: a round's few patches centred on a few corrections
    # are no sample of the image; False: statistics from the batches, recalibrated at the end
    freeze_batchnorm: bool = False
    # a model that continues (or is fine-tuned): these replace the fields above (None: as for a new model).
    # Rounds of corrections from the bundled cells model on 4 Usiigaci train fields, 150 steps a round
    # (benchmarks/rounds.py; benchmarks/reports/13-rounds.md): with the CRF term over every pixel (the
    # bundled models never trained with it) and batch norm learning from each round's few patches, F1
    # went 0.825 -> 0.807 -> 0.818 -> 0.906 -> 0.911 (corrections alone) and 0.825 -> 0.714 (accepting the
    # rest); without the term and with the statistics kept, 0.825 -> 0.841 -> 0.855 -> 0.901 -> 0.918 and
    # (accepted objects as classes) 0.825 -> 0.842
    continue_crf_weight: float | None = 0.0
    continue_freeze_batchnorm: bool = True
    continue_balanced_classes: bool | None = None
    continue_agree_weight: float | None = None
    # weight, in the cross-entropy, of annotated pixels whose annotation the starting model already predicts
    # (an accepted prediction confirms more than it teaches), against 1 for corrections. Measured and not
    # kept: at 0.1 the first rounds of corrections alone dipped (Usiigaci train, set1: F1 0.835 -> 0.787)
    # and accepting the rest still declined (0.835 -> 0.815); benchmarks/reports/13-rounds.md
    agree_weight: float = 1.0
    # planes: patches cut, turned and warped on the training device (``sampling.DeviceSampler``); False:
    # cut and turned on the host, warped on the device (the earlier loop; benchmarks/loop.py compares them)
    device_sampling: bool = True
    split_weight: float = 1.0  # of the split output's loss (where painted objects teach it) against the classes'
    # patches are centred on one stroke (connected annotations) at a time, picked uniformly, so one
    # large correction cannot outweigh the rest (benchmarks/corrections.py); False: any annotated pixel
    sample_by_stroke: bool = True
    # a model that continues is scored against the one it started from on what the user confirmed, at
    # the end of the round (``guard``): two predictions of at most four training planes
    guard: bool = True
    preview_every: float = 3.0
    first_preview: float = 1.0

    def for_model(self, summary: dict) -> TrainConfig:
        """This config with the peak learning rate for a model of this ``summary``: the fine-tuning
        rate for a generalist (a bundled model or one made from it: its summary has a "card"), the
        continuing rate for a model that has trained before, else ``learning_rate`` (a new model);
        and the weight of the term that keeps the starting model's prediction (``prior_weight``: 0
        for a new model, ``continue_prior_weight`` for one's own trained model)."""
        if summary.get("card"):
            return replace(self, learning_rate=self.fine_tune_learning_rate or self.learning_rate,
                           **self._continuing())
        if summary.get("total_steps", 0) > 0:
            return replace(self, learning_rate=self.continue_learning_rate or self.learning_rate,
                           prior_weight=self.continue_prior_weight, **self._continuing())
        return replace(self, prior_weight=0.0)

    def _continuing(self) -> dict:
        """What a model that continues (or is fine-tuned) trains with besides its rate and prior weight."""
        out = {"freeze_batchnorm": self.freeze_batchnorm or self.continue_freeze_batchnorm}
        if self.crf_weight is None and self.continue_crf_weight is not None:
            out["crf_weight"] = self.continue_crf_weight
        if self.balanced_classes is None and self.continue_balanced_classes is not None:
            out["balanced_classes"] = self.continue_balanced_classes
        if self.continue_agree_weight is not None:
            out["agree_weight"] = self.continue_agree_weight
        return out

    def __post_init__(self):
        if self.steps is None and self.time_budget is None:
            raise UserInputError("give a step count or a time budget, or training would never stop")
        if self.steps is not None and self.steps < 1:
            raise UserInputError(f"steps must be at least 1, got {self.steps}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise UserInputError(f"the time budget must be a positive number of seconds, got {self.time_budget}")
        for key, low in (("batch_size", 1), ("patch_size", 8), ("patch_depth", 1)):
            value = getattr(self, key)
            if value is not None and value < low:
                raise UserInputError(f"{key.replace('_', ' ')} must be at least {low}, got {value}")
        if self.augment_strength not in ("mild", "wide"):
            raise UserInputError(f"augment_strength must be mild or wide, got {self.augment_strength!r}")
        unknown = set(self.augment_without) - set(WIDE_AUGMENT_PARTS)
        if unknown:
            raise UserInputError(f"unknown augmentation part(s) {sorted(unknown)}: choose among "
                                 + ", ".join(WIDE_AUGMENT_PARTS))
        for key in ("prior_weight", "continue_prior_weight"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise UserInputError(f"the {key.replace('_', ' ')} must be 0 or more, got {value}")
        if not (math.isfinite(self.prior_patches) and 0 <= self.prior_patches <= 1):
            raise UserInputError(f"the share of prior patches must be between 0 and 1, got {self.prior_patches}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise UserInputError(f"the learning rate must be positive, got {self.learning_rate}")


