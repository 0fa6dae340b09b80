"""Sphinx configuration for the exman documentation."""

import os
import sys

project = "exman"
author = "exman contributors"
copyright = "exman contributors"

# local extensions: exman_help renders the live --help of the exman command
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "exman_help",
    "myst_nb",
]

# myst_nb would also read Markdown files: the pages are reStructuredText,
# the notebooks (docs/examples/) are executed at every build so that they
# show what this version of exman does, and a failing cell fails the build
source_suffix = {".rst": "restructuredtext", ".ipynb": "myst-nb"}
nb_execution_mode = "force"
nb_execution_timeout = 120
nb_execution_raise_on_error = True

html_theme = "alabaster"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
