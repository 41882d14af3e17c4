"""``napari-unet models [NAME]``: the bundled models and their cards."""

from __future__ import annotations

from ..engine.model.bundled import MODELS_DIR, bundled_names, model_path


def run(args) -> int:
    """Print each bundled model's card on stdout (an unknown NAME: one line listing the known ones)."""
    names = [args.name] if args.name else bundled_names()
    if args.name:
        model_path(args.name)  # raises UserInputError naming the bundled models
    print("\n\n".join(describe(name) for name in names) if names else "no bundled models installed")
    return 0


def card(name: str) -> dict:
    """A bundled model's card: name, description, data, licence, steps, figures, ..."""
    from ..engine.model import modelfile

    model = modelfile.load_model(model_path(name))
    info = dict(model.summary.get("card") or {"name": name})
    cfg = model.config
    info.setdefault("name", name)
    info["classes"] = list(cfg.class_names)
    info["channels"] = cfg.in_channels
    info["diameter"] = None if cfg.diameter is None else f"{cfg.diameter:.0f} px"
    info["file"] = str(MODELS_DIR / f"{name}.pt")
    info["size_mb"] = round((MODELS_DIR / f"{name}.pt").stat().st_size / 1e6, 1)
    return info


def describe(name: str) -> str:
    """The card as a few readable lines (``napari-unet models``)."""
    info = card(name)
    lines = [f"{info['name']}: {info.get('description', '')}".rstrip(": ")]
    for key in ("classes", "channels", "diameter", "data", "licence", "augment", "steps", "minutes", "command",
                "finished", "note", "figures", "file", "size_mb"):
        if info.get(key) is not None:
            value = info[key]
            if isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(map(str, value))
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)
