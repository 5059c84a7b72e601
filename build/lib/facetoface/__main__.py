"""`python -m facetoface` runs the CLI."""

from facetoface.cli import main

main()
