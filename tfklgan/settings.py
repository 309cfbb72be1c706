"""Settings fields: how a section dataclass declares its command-line flags.

A section (`DataConfig`, `NetworkConfig`, `ObjectiveConfig`, ...) is a
dataclass owned by the module that uses it. A field made with `setting()`
is a user setting: it has a flag (named after the field unless `flag` says
otherwise), a help text, and a resume rule (`resumable=True`: a resumed run
may change it). Plain fields are filled in by the code (a split, a seed).
`scripts/train.py` generates its flags from these fields, so adding a
setting means adding one field.
"""

import dataclasses


class ConfigError(ValueError):
    """Invalid settings; the message lists every problem and what to change.
    `problems`: the problems, one message each."""

    def __init__(self, problems):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1 and isinstance(problems, str):
            super().__init__(problems)
        else:
            super().__init__("invalid settings:\n  - " + "\n  - ".join(self.problems))


def setting(default, help, *, flag=None, resumable=False):
    """A dataclass field that is a user setting (see the module docstring)."""
    return dataclasses.field(default=default,
                             metadata={"help": help, "flag": flag, "resumable": resumable})


def settings_of(section):
    """The setting fields of a section class or instance, in declaration order."""
    return [f for f in dataclasses.fields(section) if "help" in f.metadata]


def flag_name(field):
    return field.metadata.get("flag") or field.name


def flag_of(section, name):
    """`--flag` of the field `name` of a section (for messages)."""
    field = next(f for f in dataclasses.fields(section) if f.name == name)
    return "--" + flag_name(field)


def raise_problems(problems):
    """Raises one ConfigError listing every problem (no-op when there are none)."""
    if problems:
        raise ConfigError(problems)
