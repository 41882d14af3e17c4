"""Training rounds: what each round adds to a model's summary (kept in the model file), and whether it
was long enough to be useful."""

from __future__ import annotations

import numpy as np

MIN_USEFUL_STEPS = 40  # fewer in a round of several seconds and the model has hardly moved
# ... and only under this rate is the CPU busy: a quiet 2-core fp32 CPU fine-tunes a bundled model at
# about 6 steps/s with previews (30 steps in a 5-s round), a busy one at under 1
BUSY_STEPS_PER_S = 2.0


def round_warning(model) -> str | None:
    """A one-line warning when the model's last round made too few steps to be useful (the CPU was
    busy with other programs), else None."""
    rounds = model.summary.get("rounds", [])
    if not rounds:
        return None
    steps, seconds = rounds[-1].get("steps", 0), rounds[-1].get("seconds", 0.0)
    if steps >= MIN_USEFUL_STEPS or seconds < 5:
        return None
    if model.config.spatial_dims == 3:  # a 3D step is many times a 2D one: slow, not necessarily busy
        return (f"only {steps} training steps in {seconds:.0f} s: the 3D U-Net trains slowly on this computer; "
                "raise the time budget, or train again to continue from this model")
    if steps >= BUSY_STEPS_PER_S * seconds:  # a short round on a slow CPU, not a busy one
        return None
    return (f"only {steps} training steps in {seconds:.0f} s: the computer is busy with other programs; close "
            "them, or train again to continue from this model")


def record(model, config, steps, seconds, losses, n_images, n_annotated, device, n_object_pixels=0, **extra) -> None:
    """Append this round to the model's training summary (kept in the model file)."""
    rounds = model.summary.setdefault("rounds", [])
    rounds.append({
        "steps": steps,
        "seconds": round(seconds, 2),
        "final_loss": float(np.mean(losses[-10:])) if losses else None,
        "images": n_images,
        "annotated_pixels": n_annotated,
        "device": str(device),
        "batch_size": config.batch_size,
        "patch_size": config.patch_size,
        "patch_depth": config.patch_depth,
        "seed": config.seed,
        "learning_rate": config.learning_rate,
        "augment": [config.augment_strength, *config.augment_without] if config.augment else [],
        "object_pixels": n_object_pixels,
        "prior_weight": config.prior_weight,
        **({"prior_patches": config.prior_patches} if config.prior_patches and config.prior_weight else {}),
        **extra,
    })
    model.summary["total_steps"] = sum(r["steps"] for r in rounds)
    # what taught the split output: the model splits with it from now on (objects.learned_split)
    model.summary["object_pixels"] = sum(r.get("object_pixels", 0) for r in rounds)


def split_note(model) -> str | None:
    """One line when the model's last round taught its split output objects but it still splits by the
    distance rule (``split_rule``: the learned split did not match the painted objects clearly better),
    else None: so a user who painted whole objects knows why touching ones may still come out merged."""
    rounds = model.summary.get("rounds", [])
    choice = rounds[-1].get("split_rule") if rounds else None
    if not choice or choice["rule"] != "distance":
        return None
    return (f"touching objects are split by their shape: the split your objects teach matched them "
            f"{choice['learned']:.2f} against {choice['distance']:.2f}; paint more whole objects where objects touch")
