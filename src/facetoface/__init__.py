"""facetoface: the service between app teams and Tavus's Conversational Video Interface."""

from importlib.metadata import PackageNotFoundError, version

try:
    #: The release, from the installed package's metadata: pyproject.toml is its one source.
    __version__ = version("facetoface")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0"
