"""absl flags for TrainConfig, for the scripts (the library never reads flags).

`define_train_flags(flag_values)` defines one flag per setting of every
section, named, typed, defaulted and explained by the section's field;
`config_from_flags(flag_values)` builds the config; `config_from_flagfile`
reads a flagfile; `settings_help()` is the `--help` text, grouped by section.
"""

import os
import textwrap

from absl import flags

from tfklgan.config import FLAT_NAMES, SECTIONS, TrainConfig, setting_type
from tfklgan.settings import flag_name, settings_of

SECTION_TITLES = {
    "data": "Data", "network": "Networks", "objective": "Objective",
    "optimizer": "Optimization", "evaluation": "Evaluation during training",
    "run": "Run: length, seed, execution and outputs",
}


def _define(kind, name, default, help_text, flag_values):
    if kind is bool:
        flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
    elif kind is int:
        flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
    elif kind is float:
        flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
    elif kind is tuple:
        flags.DEFINE_list(name, list(default), help_text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def define_train_flags(flag_values=flags.FLAGS):
    for section, section_cls in SECTIONS.items():
        for field in settings_of(section_cls):
            _define(setting_type(section, field.name), flag_name(field), field.default,
                    field.metadata["help"], flag_values)


def config_from_flags(flag_values=flags.FLAGS):
    """The TrainConfig of the parsed flags (ConfigError lists every bad value)."""
    return TrainConfig.from_flat(**{name: flag_values[name].value for name in FLAT_NAMES})


def config_from_flagfile(path, root="."):
    """The TrainConfig of a flagfile, read from `root` (flagfiles include
    each other by paths relative to the repository root)."""
    values = flags.FlagValues()
    define_train_flags(values)
    here = os.getcwd()
    os.chdir(root)
    try:
        values(["tfklgan", f"--flagfile={path}"])
    finally:
        os.chdir(here)
    return config_from_flags(values)


def settings_help(width=100):
    """The training flags grouped by section, each with its help and default."""
    lines = []
    for section, section_cls in SECTIONS.items():
        lines.append(f"{SECTION_TITLES[section]}:")
        for field in settings_of(section_cls):
            default = field.default
            if isinstance(default, tuple):
                default = ",".join(default)
            text = f"{field.metadata['help']} (default: {default!r})"
            lines.append(f"  --{flag_name(field)}")
            lines.extend(textwrap.wrap(text, width, initial_indent="      ",
                                       subsequent_indent="      "))
        lines.append("")
    return "\n".join(lines)
