"""vertebrafat: lumbar vertebral bone marrow fat fraction from water-fat MRI."""

from vertebrafat.core.errors import GeometryError, InputError, ModelError, VertebrafatError

__version__ = "0.1.0"

__all__ = ["GeometryError", "InputError", "ModelError", "VertebrafatError", "__version__"]
