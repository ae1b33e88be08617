"""The one exception family of vertebrafat.

The CLI turns every :class:`VertebrafatError` into one readable line and exit code 2;
anything else is a bug and keeps its traceback.
"""


class VertebrafatError(Exception):
    """Base class of every error vertebrafat raises on purpose."""


class InputError(VertebrafatError):
    """A user-supplied file, folder, table or option is unusable."""


class NotWaterFatError(InputError):
    """A readable input that holds no water image (only echoes, or other series): ``info``
    describes what it holds instead; every verb that needs the maps stops with this line."""


class GeometryError(VertebrafatError):
    """Images that must share one voxel grid do not, or the orientation is unsupported."""


class ModelError(VertebrafatError):
    """A model file or model card is missing, corrupt, or unfit for the study."""


class OutputError(VertebrafatError):
    """An output cannot be written: a file where a folder should be, no permission, disk full."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a long run after it had put what was done in order; ``str()`` is one line
    saying how far it got and how to go on. A ``KeyboardInterrupt``, so a script stops as on
    any Ctrl-C; the CLI prints the line and exits with 130."""
