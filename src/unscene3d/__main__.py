"""``python -m unscene3d`` runs the command-line tool."""

from unscene3d.cli import app

app(prog_name="unscene3d")
