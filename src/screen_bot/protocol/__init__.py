"""Protocols: the dialog-file schema, loading with located problems, the catalog."""

from .loader import DialogFileError, Problem, Protocol, iter_dialog_files, load

__all__ = ["DialogFileError", "Problem", "Protocol", "iter_dialog_files", "load"]
